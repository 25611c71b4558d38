import Testing
@testable import FleetCore

/// `deliver:` read into a DeliverSpec, with positioned errors.
@Suite struct DeliverSpecTests {
    func deliver(_ text: String) throws -> DeliverSpec? {
        try parseSpec(baseSpec + text).deliverSpec()
    }

    @Test func aFolderWithApproval() throws {
        let d = try #require(try deliver("deliver: { to: outbox/finance, approval: required }\n"))
        #expect(d.target == .directory("outbox/finance"))
        #expect(d.approval == .required)
        #expect(d.location == SpecLocation(line: 11, column: 10))
    }

    @Test func approvalDefaultsToNoneAndPathsAreNormalized() throws {
        let d = try #require(try deliver("deliver: {to: ./outbox//finance/}\n"))
        #expect(d.target == .directory("outbox/finance"))
        #expect(d.approval == DeliverSpec.Approval.none)
        #expect(try parseSpec(baseSpec).deliverSpec() == nil)
    }

    @Test func anEndpointWithATokenVariable() throws {
        let d = try #require(try deliver("deliver:\n  to: {url: \"https://finance.example.com/in\", token_env: FINANCE_TOKEN}\n  approval: none\n"))
        #expect(d.target == .http(url: "https://finance.example.com/in", tokenEnv: "FINANCE_TOKEN"))
        let local = try #require(try deliver("deliver: {to: {url: \"http://127.0.0.1:8080/x\", token_env: T}}\n"))
        #expect(local.target == .http(url: "http://127.0.0.1:8080/x", tokenEnv: "T"))
    }

    @Test func mistakesAreReportedWhereTheyAre() {
        #expect(specErrors(baseSpec + "deliver: {to: ../elsewhere}\n") == [
            "spec.yml:11:15: deliver to must be a folder under the data root such as outbox/finance, not '../elsewhere' "
                + "(no '..' that leaves the data root, and not the data root itself)",
        ])
        #expect(specErrors(baseSpec + "deliver: {to: outbox, approval: maybe}\n") == [
            "spec.yml:11:33: deliver approval must be required or none, not 'maybe'",
        ])
        #expect(specErrors(baseSpec + "deliver: {too: outbox}\n") == [
            "spec.yml:11:11: unknown key 'too' in deliver; did you mean 'to'?",
        ])
        #expect(specErrors(baseSpec + "deliver: {approval: none}\n") == [
            "spec.yml:11:10: deliver needs 'to': a folder under the data root (to: outbox/finance) "
                + "or an endpoint (to: {url: https://…, token_env: NAME})",
        ])
        #expect(specErrors(baseSpec + "deliver: {to: \"https://x.example/in\"}\n") == [
            "spec.yml:11:15: deliver to 'https://x.example/in' looks like a URL; write it as to: {url: https://x.example/in}",
        ])
        #expect(specErrors(baseSpec + "deliver: outbox\n") == [
            "spec.yml:11:10: deliver must be a mapping such as {to: outbox/finance, approval: required}, not 'outbox'",
        ])
    }

    @Test func endpointMistakes() {
        #expect(specErrors(baseSpec + "deliver: {to: {url: \"ftp://x/in\"}}\n") == [
            "spec.yml:11:21: deliver url must be http:// or https:// with a host, not 'ftp://x/in'",
        ])
        #expect(specErrors(baseSpec + "deliver: {to: {url: \"https://u:p@x/in\"}}\n") == [
            "spec.yml:11:21: deliver url must not carry a user or password; put a token in an environment variable "
                + "and name it with token_env",
        ])
        #expect(specErrors(baseSpec + "deliver: {to: {url: \"http://x.example/in\", token_env: T}}\n") == [
            "spec.yml:11:21: deliver url is plain http to x.example but a token_env is set: the token would cross "
                + "the network unencrypted; use https:// (plain http is only allowed to localhost)",
        ])
        #expect(specErrors(baseSpec + "deliver: {to: {url: \"https://x/in\", token_env: 9lives, tokn: x}}\n") == [
            "spec.yml:11:48: token_env must name an environment variable (letters, digits and _, not starting with a digit), not '9lives'",
            "spec.yml:11:56: unknown key 'tokn' in deliver to; expected url, token_env",
        ])
    }

    @Test func confinedDirectory() {
        #expect(DeliverSpec.confinedDirectory("a/b/../c") == "a/c")
        #expect(DeliverSpec.confinedDirectory("a/..") == nil)
        #expect(DeliverSpec.confinedDirectory("/srv/data/outbox") == "/srv/data/outbox")
        #expect(DeliverSpec.confinedDirectory("/..") == nil)
    }
}
