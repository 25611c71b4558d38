import Testing
@testable import AMQP

@Suite struct AMQPURLTests {
    @Test func parsesEveryPart() throws {
        let url = try AMQPURL("amqp://bis:s%40cret@broker.example:5682/prod%2Fa")
        #expect(url == AMQPURL(tls: false, host: "broker.example", port: 5682, user: "bis", password: "s@cret",
                               vhost: "prod/a"))
    }

    @Test func defaultsFollowTheScheme() throws {
        let plain = try AMQPURL("amqp://host")
        #expect(plain.port == 5672 && plain.user == "guest" && plain.password == "guest" && plain.vhost == "/")
        let tls = try AMQPURL("amqps://u:p@host/")
        #expect(tls.tls && tls.port == 5671 && tls.vhost == "/")
        let encodedRoot = try AMQPURL("amqp://u:p@host:1/%2F")
        #expect(encodedRoot.vhost == "/")
    }

    @Test func ipv6Literal() throws {
        let url = try AMQPURL("amqp://u:p@[::1]:5682/%2F")
        #expect(url.host == "::1" && url.port == 5682)
        #expect(url.description == "amqp://u:***@[::1]:5682/%2F")
    }

    @Test func rejectsBadInputWithoutLeakingThePassword() {
        for bad in ["http://u:hunter2@host/", "amqp://u:hunter2@host:99999/", "amqp://u:hunter2@host:x/",
                    "amqp://u:hunter2@host/%zz"] {
            do {
                _ = try AMQPURL(bad)
                Issue.record("\(bad) should not parse")
            } catch {
                #expect(!error.description.contains("hunter2"), "\(error)")
            }
        }
    }

    @Test func descriptionNeverShowsThePassword() throws {
        let url = try AMQPURL("amqps://admin:hunter2@10.0.0.1:5671/ops")
        #expect(url.description == "amqps://admin:***@10.0.0.1:5671/ops")
        #expect(!"\(url)".contains("hunter2"))
        #expect(AMQPURL.redact("amqp://admin:hunter2@h/") == "amqp://admin:***@h/")
        #expect(AMQPURL.redact("amqp://h/") == "amqp://h/")
    }
}

@Suite struct ConfigurationTests {
    @Test func reconnectBackoffDoublesUpToTheCap() {
        let p = ReconnectPolicy(initialDelay: 0.1, maxDelay: 1)
        #expect(p.delay(forAttempt: 1) == 0.1)
        #expect(p.delay(forAttempt: 2) == 0.2)
        #expect(p.delay(forAttempt: 4) == 0.8)
        #expect(p.delay(forAttempt: 5) == 1)
        #expect(p.delay(forAttempt: 500) == 1)
    }

    @Test func workQueueArgumentsAskForAtLeastOnceDeadLettering() {
        let q = QueueSpec.work("bis.stage.ingest", deliveryLimit: 5, deadLetterExchange: "bis.dead")
        let args = Dictionary(uniqueKeysWithValues: q.arguments)
        #expect(args["x-queue-type"] == .string("quorum"))
        #expect(args["x-delivery-limit"] == .int(5))
        #expect(args["x-dead-letter-exchange"] == .string("bis.dead"))
        #expect(args["x-dead-letter-strategy"] == .string("at-least-once"))
        #expect(args["x-overflow"] == .string("reject-publish"))
        #expect(q.durable)
    }

    @Test func delayQueueDeadLettersBackToItsTarget() {
        let q = QueueSpec.delay("bis.delay.2000", delayMilliseconds: 2000, targetExchange: "bis.tasks")
        let args = Dictionary(uniqueKeysWithValues: q.arguments)
        #expect(args["x-message-ttl"] == .int(2000))
        #expect(args["x-dead-letter-exchange"] == .string("bis.tasks"))
        #expect(args["x-dead-letter-routing-key"] == nil, "keeps the original routing key")
    }

    @Test func classicQueuesMayBeTransient() {
        #expect(!QueueSpec("tmp", kind: .classic, durable: false).durable)
        #expect(QueueSpec("q", kind: .quorum, durable: false).durable, "quorum queues are always durable")
    }

    /// A password holding `/`, `@`, `:` or an escape is parsed whole and
    /// never shown, also when the URL does not parse.
    @Test(arguments: [("pa/ss", "pa/ss"), ("p@ss", "p@ss"), ("p:ss", "p:ss"), ("pa%2Fss", "pa/ss"), ("a/b@c:d", "a/b@c:d"), ("a,b", "a,b"), ("x,amqp", "x,amqp")])
    func passwordsWithReservedCharacters(written: String, meant: String) throws {
        let text = "amqps://ops:\(written)@broker.example:5671/%2F"
        let url = try AMQPURL(text)
        #expect(url.user == "ops")
        #expect(url.password == meant)
        #expect(url.host == "broker.example")
        #expect(url.port == 5671)
        #expect(url.vhost == "/")
        #expect(url.description == "amqps://ops:***@broker.example:5671/%2F")
        #expect(AMQPURL.redact(text) == "amqps://ops:***@broker.example:5671/%2F")
        let bad = "amqp://ops:\(written)@broker.example:0/"
        #expect(!AMQPURL.redact(bad).contains(written))
        do {
            _ = try AMQPURL(bad)
            Issue.record("\(bad) should not parse")
        } catch {
            #expect(!error.description.contains(written), "\(error)")
        }
        let list = "amqp://a:\(written)@h1:5672/%2F,amqp://b:\(written)@h2:5672/%2F"
        #expect(AMQPURL.redact(list) == "amqp://a:***@h1:5672/%2F,amqp://b:***@h2:5672/%2F")
    }

    /// An `@` in the query is not the end of the user information.
    @Test func anAtSignInTheQueryIsNotTheUserinfo() throws {
        let url = try AMQPURL("amqp://u:p@h:5672/v?x=a@b")
        #expect(url.host == "h" && url.password == "p" && url.vhost == "v")
    }
}

/// What `--amqp` refuses: a URL that carries a password (it would show in `ps`).
@Suite struct AMQPURLPasswordTests {
    @Test func aPasswordAnywhereInTheUserInformationCounts() {
        for url in ["amqp://bis:bis@127.0.0.1:5672/%2F", "amqp://bis:@host", "amqps://u:p/w@rd@host/v",
                    "amqp://u:a%2Fb@host", "amqp://u:p:q@host", "host@with-no-scheme"] {
            #expect(AMQPURL.carriesPassword(url), "\(url)")
        }
    }

    @Test func aURLWithoutAPasswordPasses() {
        for url in ["amqp://bis@127.0.0.1:5672/%2F", "amqp://host", "amqps://host:5671/v?heartbeat=5", "amqp://user@host/v%40x"] {
            #expect(!AMQPURL.carriesPassword(url), "\(url)")
        }
    }
}
