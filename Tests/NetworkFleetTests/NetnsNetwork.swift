import Foundation
import TestSupport

/// One simulated host: a network namespace joined to the root namespace by a
/// veth pair, `rootAddress` on the root side and `address` inside.
struct NetnsHost: Sendable {
    let namespace: String
    /// The veth end in the root namespace: set it down to cut the host off.
    let rootLink: String
    let link: String
    let rootAddress: String
    let address: String
}

/// Creates hosts, cuts and restores their links, and removes everything it
/// made (`teardown`, also after a failure: every step is recorded first).
final class NetnsNetwork: @unchecked Sendable {
    let ip: String
    private let tag: String
    private(set) var hosts: [NetnsHost] = []
    private var namespaces: [String] = []
    private var links: [String] = []

    init(ip: String) {
        self.ip = ip
        tag = String(format: "%04x", UInt16.random(in: 0...UInt16.max))
    }

    /// `bis<label><tag>` with a /30 `10.231.<subnet>.0`: .1 root side, .2 inside, loopback up.
    func addHost(_ label: String, subnet: Int) throws -> NetnsHost {
        let host = NetnsHost(namespace: "bis\(label)\(tag)", rootLink: "vb\(label)\(tag)r", link: "vb\(label)\(tag)n",
                             rootAddress: "10.231.\(subnet).1", address: "10.231.\(subnet).2")
        namespaces.append(host.namespace)
        try run(["netns", "add", host.namespace])
        links.append(host.rootLink)
        try run(["link", "add", host.rootLink, "type", "veth", "peer", "name", host.link])
        try run(["link", "set", host.link, "netns", host.namespace])
        try run(["addr", "add", host.rootAddress + "/30", "dev", host.rootLink])
        try run(["link", "set", host.rootLink, "up"])
        try run(["-n", host.namespace, "addr", "add", host.address + "/30", "dev", host.link])
        try run(["-n", host.namespace, "link", "set", host.link, "up"])
        try run(["-n", host.namespace, "link", "set", "lo", "up"])
        hosts.append(host)
        return host
    }

    /// The host loses its network: its veth's root end goes down.
    func cut(_ host: NetnsHost) throws { try run(["link", "set", host.rootLink, "down"]) }

    func restore(_ host: NetnsHost) throws { try run(["link", "set", host.rootLink, "up"]) }

    /// `ip netns exec NS` followed by the command.
    func exec(in host: NetnsHost, _ command: [String]) -> (executable: String, arguments: [String]) {
        (ip, ["netns", "exec", host.namespace] + command)
    }

    /// Deletes the links and namespaces (deleting one veth end deletes its
    /// peer; deleting a namespace deletes what is left in it). Never throws.
    func teardown() {
        for link in links.reversed() { _ = try? NetnsCommand.run(ip, ["link", "del", link]) }
        for ns in namespaces.reversed() { _ = try? NetnsCommand.run(ip, ["netns", "del", ns]) }
        links = []
        namespaces = []
    }

    private func run(_ arguments: [String]) throws {
        let r = try NetnsCommand.run(ip, arguments)
        guard r.status == 0 else { throw NetnsFailure("\(r)") }
    }
}

/// Whether HostCutTests can run here, and why not.
///
/// - The broker: `BIS_TEST_AMQP_URL` (ops/test sets it). Without it the tests
///   skip, unless `BIS_REQUIRE_BROKER=1`: then they run and fail, naming it.
/// - Network namespaces: a namespace and a veth pair are made and deleted
///   again. Failing that (not root, no CAP_NET_ADMIN, no `ip`, no veth) is
///   the only reason that skips them when the broker is required.
/// - Python with DuckDB, to compare the published rows (as the other
///   cross-check tests: `BIS_REQUIRE_PYTHON=1` makes it missing a failure).
enum NetnsGate {
    static let environment = ProcessInfo.processInfo.environment
    static var brokerURL: String? { environment["BIS_TEST_AMQP_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var brokerRequired: Bool { environment["BIS_REQUIRE_BROKER"] == "1" }

    /// The `ip` tool and whether namespaces work; `problem` says why not.
    static let probe: (ip: String?, problem: String?) = runProbe()

    static let python = PythonTool(importing: "duckdb")

    static var enabled: Bool {
        (brokerURL != nil || brokerRequired) && probe.problem == nil && python.enabled
    }

    static var skipReason: String {
        if brokerURL == nil && !brokerRequired { return "needs the private broker: run ops/test (BIS_TEST_AMQP_URL is not set)" }
        if let problem = probe.problem { return "network namespaces are not permitted here: \(problem)" }
        if !python.enabled { return "no Python with duckdb to compare the published rows (run ops/setup or set BIS_PYTHON)" }
        return ""
    }

    private static func runProbe() -> (ip: String?, problem: String?) {
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return (nil, "no `ip` command (iproute2) in /usr/sbin, /sbin, /usr/bin or /bin")
        }
        let tag = String(format: "%06x", UInt32.random(in: 0...0xffffff))
        let ns = "bisprobe\(tag)"
        let link = "vbp\(tag)"
        func attempt(_ args: [String]) -> String? {
            do {
                let r = try NetnsCommand.run(ip, args)
                return r.status == 0 ? nil : "`ip \(args.joined(separator: " "))` failed (\(r.status)): "
                    + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                return "cannot run \(ip): \(error)"
            }
        }
        if let problem = attempt(["netns", "add", ns]) {
            return (ip, problem + " (needs root or CAP_NET_ADMIN+CAP_SYS_ADMIN)")
        }
        defer { _ = attempt(["netns", "del", ns]) }
        if let problem = attempt(["link", "add", link, "type", "veth", "peer", "name", link + "n"]) {
            return (ip, problem + " (veth pairs are needed)")
        }
        defer { _ = attempt(["link", "del", link]) }
        if let problem = attempt(["link", "set", link + "n", "netns", ns]) { return (ip, problem) }
        return (ip, nil)
    }
}
