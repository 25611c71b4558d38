import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether something accepts TCP connections at `host:port` (an IPv4
/// address or localhost). Fleet tests wait on it before starting processes:
/// other suites restart the shared broker, and a coordinator or worker that
/// finds no broker at start exits 3 at once, as it should.
public func tcpAcceptsConnections(host: String, port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else { return true }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return r == 0
}

/// Waits (at most `timeout` seconds) until the AMQP URL's broker accepts connections.
public func waitForBroker(_ amqpURL: String, timeout: Double = 120) async throws {
    // A comma-separated list (a cluster's nodes): any node that answers will do.
    // Split as AMQPURL.listEntries does (TestSupport does not link AMQP): a
    // comma only where a URL follows, since a password may hold one.
    var entries: [String] = []
    var current = ""
    for part in amqpURL.components(separatedBy: ",") {
        let trimmed = part.drop { $0 == " " }
        if !entries.isEmpty || !current.isEmpty, trimmed.hasPrefix("amqp://") || trimmed.hasPrefix("amqps://") {
            entries.append(current); current = String(trimmed)
        } else {
            current += current.isEmpty && entries.isEmpty ? String(trimmed) : "," + part
        }
    }
    entries.append(current)
    let nodes = entries.compactMap { u -> (String, UInt16)? in
        guard let url = URLComponents(string: u), let host = url.host else { return nil }
        return (host, UInt16(url.port ?? 5672))
    }
    guard let (host, port) = nodes.first else { return }
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if nodes.contains(where: { tcpAcceptsConnections(host: $0.0, port: $0.1) }) { return }
        try await Task.sleep(for: .milliseconds(250))
    }
    struct BrokerDown: Error, CustomStringConvertible {
        let description: String
    }
    throw BrokerDown(description: "the broker at \(host):\(port) did not accept connections within \(Int(timeout)) s")
}
