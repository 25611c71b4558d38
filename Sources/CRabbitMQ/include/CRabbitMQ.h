// rabbitmq-c 0.11 (Debian librabbitmq-dev), plus shims for what Swift cannot
// call: amqp_login_with_properties is variadic.
#ifndef BIS_CRABBITMQ_H
#define BIS_CRABBITMQ_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <sys/time.h>
#include <sys/eventfd.h>

/// A non-blocking eventfd that other threads write to wake an I/O loop
/// blocked in poll() (eventfd's flags are macros Swift cannot see).
static inline int bis_wake_fd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/// Logs in with SASL PLAIN, announcing the client properties (capabilities
/// such as consumer_cancel_notify). Returns the RPC reply of the login.
amqp_rpc_reply_t bis_amqp_login_plain(amqp_connection_state_t state,
                                      const char *vhost,
                                      int channel_max,
                                      int frame_max,
                                      int heartbeat,
                                      const amqp_table_t *client_properties,
                                      const char *user,
                                      const char *password);

#endif
