import FleetAMQP
import FleetCore
import Foundation
import Testing

/// Where the broker password and the fleet key come from (no broker needed).
@Suite struct BrokerSecretsTests {
    func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-secrets-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aPasswordInTheFlagIsRefusedSayingWhereToPutIt() {
        do {
            _ = try BrokerSecrets.broker(flag: "amqp://bis:s/cr@t@host:5672/%2F", passwordFile: nil, environment: [:])
            Issue.record("a password in --amqp was accepted")
        } catch {
            #expect(error.description.contains("BIS_AMQP_PASSWORD"))
            #expect(error.description.contains("--amqp-password-file"))
            #expect(!error.description.contains("s/cr@t"), "the refusal shows the password: \(error)")
        }
    }

    @Test func theEnvironmentURLMayCarryThePassword() throws {
        let b = try #require(try BrokerSecrets.broker(flag: nil, passwordFile: nil,
                                                      environment: ["BIS_AMQP_URL": "amqp://bis:secret@host/%2F"]))
        #expect(b.url == "amqp://bis:secret@host/%2F")
        #expect(b.password == nil)
    }

    @Test func thePasswordComesFromTheFileBeforeTheEnvironment() throws {
        let dir = try tempDir()
        try "from-file\nignored\n".write(toFile: dir + "/pw", atomically: true, encoding: .utf8)
        let env = ["BIS_AMQP_PASSWORD": "from-env"]
        let fromFile = try #require(try BrokerSecrets.broker(flag: "amqp://bis@host", passwordFile: dir + "/pw", environment: env))
        #expect(fromFile.password == "from-file")
        let fromEnv = try #require(try BrokerSecrets.broker(flag: "amqp://bis@host", passwordFile: nil, environment: env))
        #expect(fromEnv.password == "from-env")
        #expect(throws: BrokerSecrets.Refusal.self) {
            _ = try BrokerSecrets.broker(flag: "amqp://bis@host", passwordFile: dir + "/missing", environment: [:])
        }
        #expect(try BrokerSecrets.broker(flag: nil, passwordFile: nil, environment: [:]) == nil)
    }

    @Test func theDefaultFleetKeyIsCreatedOnceInTheDataRootWithMode0600() throws {
        let dir = try tempDir()
        let first = try BrokerSecrets.fleetKey(file: nil, dataRoot: dir, environment: [:])
        #expect(first.created && first.path == dir + "/fleet.key")
        let attributes = try FileManager.default.attributesOfItem(atPath: first.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try BrokerSecrets.fleetKey(file: nil, dataRoot: dir, environment: [:])
        #expect(!second.created)
        let body = Array("{}".utf8)
        #expect(second.key.verify(.task, body, mac: first.key.mac(.task, body)) == .valid)
        // An explicit file must exist and be long enough.
        #expect(throws: FleetKeyError.self) { _ = try BrokerSecrets.fleetKey(file: dir + "/nope", dataRoot: dir, environment: [:]) }
        try "short\n".write(toFile: dir + "/short.key", atomically: true, encoding: .utf8)
        #expect(throws: FleetKeyError.self) {
            _ = try BrokerSecrets.fleetKey(file: nil, dataRoot: dir, environment: ["BIS_FLEET_KEY_FILE": dir + "/short.key"])
        }
    }
}
