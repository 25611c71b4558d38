// AMQP transport.
