import Testing
@testable import AMQP

/// Several broker nodes in one URL string, and the replication arguments.
@Suite struct ClusterURLTests {
    @Test func aCommaSeparatedListGivesOneURLPerNode() throws {
        let list = try AMQPURL.list("amqps://bis:p,w@mq1:5671/%2F,amqps://bis:p,w@mq2:5671/%2F, amqps://bis:p,w@mq3/%2F")
        #expect(list.map(\.host) == ["mq1", "mq2", "mq3"])
        #expect(list.map(\.port) == [5671, 5671, 5671])
        #expect(list.allSatisfy { $0.password == "p,w" && $0.tls && $0.vhost == "/" })
        #expect(list.map(\.node) == ["mq1:5671", "mq2:5671", "mq3:5671"])
        #expect(try AMQPURL.list("amqp://h:5682/%2F").count == 1)
    }

    @Test func aListIsRedactedAndCheckedForPasswordsURLByURL() {
        let s = "amqp://bis:secret@h1:5682/%2F,amqp://bis:other@h2:5692/%2F"
        #expect(AMQPURL.redact(s) == "amqp://bis:***@h1:5682/%2F,amqp://bis:***@h2:5692/%2F")
        #expect(AMQPURL.carriesPassword(s))
        #expect(AMQPURL.carriesPassword("amqp://bis@h1:5682/%2F,amqp://bis:x@h2:5692/%2F"))
        #expect(!AMQPURL.carriesPassword("amqp://bis@h1:5682/%2F,amqp://bis@h2:5692/%2F"))
    }

    /// A space after the comma and a query in the first URL: the second
    /// URL's password must still be hidden and seen (the `@` before the first
    /// `?` is the first URL's).
    @Test func aListWithSpacesAndAQueryIsSplitAsTheClientSplitsIt() throws {
        let s = "amqp://bis:a@h1/%2F?x=1, amqp://bis:SECRET@h2/%2F"
        #expect(try AMQPURL.list(s).map(\.host) == ["h1", "h2"])
        #expect(!AMQPURL.redact(s).contains("SECRET"))
        #expect(AMQPURL.redact(s) == "amqp://bis:***@h1/%2F?x=1, amqp://bis:***@h2/%2F")
        #expect(AMQPURL.carriesPassword("amqp://bis@h1/%2F?x=1, amqp://bis:SECRET@h2/%2F"))
        #expect(!AMQPURL.carriesPassword("amqp://bis@h1/%2F?x=1, amqp://bis@h2/%2F"))
    }

    @Test func theConfigurationKeepsEveryNodeAndSetsOnePasswordForAll() throws {
        var config = try AMQPConfiguration(url: "amqp://bis@h1:1/%2F,amqp://bis@h2:2/%2F")
        #expect(config.urls.count == 2 && config.url.host == "h1")
        config.setPassword("pw")
        #expect(config.urls.allSatisfy { $0.password == "pw" })
        #expect(AMQPConfiguration.position(for: "worker-a") == AMQPConfiguration.position(for: "worker-a"))
    }

    @Test func replicatedQuorumQueuesCarryGroupSizeAndLeaderLocator() {
        let q = QueueSpec.delay("d", delayMilliseconds: 500, targetExchange: "t").replicated()
        let names = q.arguments.map(\.0)
        #expect(names.contains("x-quorum-initial-group-size") && names.contains("x-queue-leader-locator"))
        #expect(names.contains("x-dead-letter-strategy") && names.contains("x-overflow") && names.contains("x-message-ttl"))
        #expect(q.withoutCreationArguments.arguments.map(\.0) == QueueSpec.delay("d", delayMilliseconds: 500, targetExchange: "t").arguments.map(\.0))
        #expect(QueueSpec("c", kind: .classic).replicated().initialGroupSize == nil)
        #expect(QueueSpec.isCreationArgumentMismatch("PRECONDITION_FAILED - inequivalent arg 'x-quorum-initial-group-size' for queue 'q'"))
        #expect(!QueueSpec.isCreationArgumentMismatch("PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'q'"))
    }
}
