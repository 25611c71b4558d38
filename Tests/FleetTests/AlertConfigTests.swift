import Foundation
import Testing
@testable import Coordination

/// `bis coordinator --alerts FILE` (docs/alerts.md): receivers, routes, secrets, redaction.
@Suite struct AlertConfigTests {
    static let file = """
        receivers:
          ops: {webhook: "https://hooks.example.com/bis/T0KEN", secret_env: OPS_KEY}
          chat: {slack: "https://hooks.slack.com/services/T000/B000/XXXX"}
          plain: {webhook: "http://127.0.0.1:8080/x", format: slack}
          am: {alertmanager: "http://127.0.0.1:9093"}
        routes:
          - {pipeline: "orders-*", on: [run_failed, deadline_missed], to: [ops, chat]}
          - {on: run_succeeded, to: plain}
          - {to: [am, ops]}
        """

    @Test func receiversAndRoutesAreRead() throws {
        let c = try AlertsConfig.parse(Self.file, file: "alerts.yml", environment: ["OPS_KEY": "s3cret"])
        #expect(c.receivers["ops"] == AlertReceiver(name: "ops", kind: .webhook, url: "https://hooks.example.com/bis/T0KEN",
                                                     secret: Array("s3cret".utf8)))
        #expect(c.receivers["chat"]?.kind == .slack && c.receivers["plain"]?.kind == .slack && c.receivers["am"]?.kind == .alertmanager)
        #expect(c.receivers(pipeline: "orders-daily", event: .runFailed) == ["ops", "chat", "am"])
        #expect(c.receivers(pipeline: "billing", event: .runFailed) == ["am", "ops"])
        #expect(c.receivers(pipeline: "billing", event: .runSucceeded) == ["plain"], "run_succeeded only where listed")
        #expect(c.receivers(pipeline: nil, event: .workerLost) == ["am", "ops"], "no pipeline: only '*' routes")
    }

    @Test func mistakesStopTheCoordinatorNamingThem() {
        func error(_ text: String, _ env: [String: String] = [:]) -> String {
            do { _ = try AlertsConfig.parse(text, file: "a.yml", environment: env); return "" } catch { return "\(error)" }
        }
        #expect(error("receivers: {x: {webhook: \"http://h/\", secret_env: NOPE}}").contains("secret_env names an environment variable that is not set"))
        #expect(error("receivers: {x: {webhook: \"ftp://h/\"}}").contains("is not an http:// or https:// URL"))
        #expect(error("routes: [{to: [nobody]}]").contains("no receiver named 'nobody'"))
        #expect(error("receivers: {x: {slack: \"http://h/\"}}\nroutes: [{on: [run_exploded], to: [x]}]").contains("unknown event 'run_exploded'"))
        #expect(error("receivers: {x: {webhook: \"http://h/\", slack: \"http://h/\"}}").contains("exactly one of"))
        #expect(!error("receivers: {x: {webhook: \"https://h/SECRETPATH\", secret_env: NOPE}}").contains("SECRETPATH"))
    }

    @Test func globsAndRedaction() {
        #expect(AlertRoute.glob("orders-*", matches: "orders-daily"))
        #expect(AlertRoute.glob("*", matches: ""))
        #expect(AlertRoute.glob("o?ders", matches: "orders"))
        #expect(!AlertRoute.glob("orders-*", matches: "orders"))
        #expect(AlertReceiver.redact("https://hooks.slack.com/services/T000/B000/XXXX") == "https://hooks.slack.com/…")
        #expect(AlertReceiver.redact("http://user:pw@127.0.0.1:9093") == "http://127.0.0.1:9093")
        #expect(AlertReceiver.redact("http://127.0.0.1:9093/?token=x") == "http://127.0.0.1:9093/…")
    }
}
