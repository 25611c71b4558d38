import FleetCore
import Foundation
import Logging
import Testing

/// Collects what a `JSONLogHandler` writes.
final class LineSink: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ s: String) { lock.withLock { lines.append(s) } }
    var all: [String] { lock.withLock { lines } }
}

struct JSONLogHandlerTests {
    func logger(_ sink: LineSink, label: String = "bis.test") -> Logger {
        Logger(label: label) { JSONLogHandler(label: $0, write: sink.append) }
    }

    /// Every written entry: one line ending in \n, parsed as a JSON object.
    func objects(_ sink: LineSink) throws -> [[String: Any]] {
        try sink.all.map { line in
            #expect(line.hasSuffix("\n"))
            #expect(!line.dropLast().contains("\n"))
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try #require(o as? [String: Any])
        }
    }

    @Test func fixedKeysAndLevels() throws {
        let sink = LineSink()
        var log = logger(sink)
        log.logLevel = .trace
        for level in Logger.Level.allCases { log.log(level: level, "at \(level.rawValue)") }
        let objs = try objects(sink)
        #expect(objs.map { $0["level"] as? String } == ["trace", "debug", "info", "notice", "warning", "error", "critical"])
        for o in objs {
            #expect(o["logger"] as? String == "bis.test")
            #expect(o["message"] as? String == "at \(o["level"] as! String)")
            #expect(o["source"] as? String == "FleetCoreTests")
            let ts = try #require(o["ts"] as? String)
            #expect(ts.count == 24 && ts.hasSuffix("Z"), "\(ts)")
        }
    }

    @Test func levelBelowTheHandlersIsNotWritten() throws {
        let sink = LineSink()
        let log = logger(sink)   // info, as the text handler
        log.debug("hidden")
        log.info("shown")
        #expect(try objects(sink).map { $0["message"] as? String } == ["shown"])
    }

    @Test func timestampIsUTCWithMilliseconds() {
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 1_796_430_662.4178)) == "2026-12-05T00:31:02.417Z")
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500Z")
    }

    @Test func stringsAreEscaped() throws {
        let nasty = "quote \" backslash \\ newline \n cr \r tab \t nul \u{0} bell \u{7} esc \u{1B} del \u{7F} "
            + "ls \u{2028} ps \u{2029} slash / emoji 🚚 é"
        let sink = LineSink()
        logger(sink, label: "bis.\"odd\"\nlabel").info("\(nasty)", metadata: ["k\n\"ey": "\(nasty)"])
        let line = try #require(sink.all.first)
        #expect(line.filter { $0 == "\n" }.count == 1)
        #expect(!line.contains("\u{2028}") && !line.contains("\u{2029}"))
        #expect(line.contains("\\u2028") && line.contains("\\u0000") && line.contains("\\u001b"))
        let o = try #require(try objects(sink).first)
        #expect(o["message"] as? String == nasty)
        #expect(o["k\n\"ey"] as? String == nasty)
        #expect(o["logger"] as? String == "bis.\"odd\"\nlabel")
    }

    @Test func metadataIsFlattenedWithItsNames() throws {
        let sink = LineSink()
        var log = logger(sink)
        log[metadataKey: "run.id"] = "orders-20261205T000000Z-ab12"
        log[metadataKey: "task.id"] = "orders-20261205T000000Z-ab12/ingest/0"
        log[metadataKey: "task.stage"] = "ingest"
        log[metadataKey: "execution.id"] = "e-1"
        log.warning("task failed", metadata: [
            "task.attempt": .stringConvertible(3),
            "nested": .dictionary(["b": "2", "a": .array(["x", .dictionary(["deep": "y"])])]),
            "list": .array([]),
            "task.stage": "validate",   // the call's value wins, as in the text handler
        ])
        let o = try #require(try objects(sink).first)
        #expect(o["run.id"] as? String == "orders-20261205T000000Z-ab12")
        #expect(o["task.id"] as? String == "orders-20261205T000000Z-ab12/ingest/0")
        #expect(o["execution.id"] as? String == "e-1")
        #expect(o["task.stage"] as? String == "validate")
        #expect(o["task.attempt"] as? String == "3")
        let nested = try #require(o["nested"] as? [String: Any])
        #expect(nested["b"] as? String == "2")
        let a = try #require(nested["a"] as? [Any])
        #expect(a.first as? String == "x")
        #expect((a.last as? [String: Any])?["deep"] as? String == "y")
        #expect((o["list"] as? [Any])?.isEmpty == true)
        #expect(o["run"] == nil)   // dotted names are names, not nesting
    }

    @Test func metadataNeverHidesTheFixedKeys() throws {
        let sink = LineSink()
        logger(sink).info("the message", metadata: ["message": "other", "level": "fake", "ts": "x", "logger": "y", "source": "z"])
        let o = try #require(try objects(sink).first)
        #expect(o["message"] as? String == "the message")
        #expect(o["level"] as? String == "info")
        #expect(o["logger"] as? String == "bis.test")
        #expect(o["metadata.message"] as? String == "other")
        #expect(o["metadata.level"] as? String == "fake")
        #expect(o["metadata.source"] as? String == "z")
    }

    @Test func errorsAreNamedAsTheTextHandlerNamesThem() throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let sink = LineSink()
        logger(sink).error("failed", error: Boom())
        let o = try #require(try objects(sink).first)
        #expect(o["error.message"] as? String == "boom")
        #expect((o["error.type"] as? String)?.hasSuffix("Boom") == true)
    }

    @Test func metadataProviderIsIncluded() throws {
        let sink = LineSink()
        let provider = Logger.MetadataProvider { ["trace.id": "t-1"] }
        let log = Logger(label: "bis.test") { JSONLogHandler(label: $0, metadataProvider: provider, write: sink.append) }
        log.info("hello")
        #expect(try objects(sink).first?["trace.id"] as? String == "t-1")
    }

    @Test func formatComesFromTheFlagThenTheEnvironment() throws {
        #expect(try LogFormat.resolve(flag: nil, environment: [:]) == .text)
        #expect(try LogFormat.resolve(flag: nil, environment: ["BIS_LOG_FORMAT": ""]) == .text)
        #expect(try LogFormat.resolve(flag: nil, environment: ["BIS_LOG_FORMAT": "json"]) == .json)
        #expect(try LogFormat.resolve(flag: "text", environment: ["BIS_LOG_FORMAT": "json"]) == .text)
        #expect(try LogFormat.resolve(flag: "json", environment: [:]) == .json)
        do {
            _ = try LogFormat.resolve(flag: "yaml", environment: [:])
            Issue.record("yaml should be refused")
        } catch {
            #expect(error.description == "--log-format 'yaml': the log format is text or json")
        }
        do {
            _ = try LogFormat.resolve(flag: nil, environment: ["BIS_LOG_FORMAT": "JSON"])
            Issue.record("JSON should be refused")
        } catch {
            #expect(error.description == "BIS_LOG_FORMAT 'JSON': the log format is text or json")
        }
    }
}
