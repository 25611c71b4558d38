import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTPS request over NIO and NIOSSL, for `CoordinatorClient`: the
/// server's certificate is verified against `BIS_CA_FILE`'s certificates
/// when given (else the system's trust store), and its name or IP address
/// against the URL's host. One connection per request (`Connection: close`):
/// the CLI makes a few calls.
enum HTTPSClient {
    enum Failure: Error {
        /// The handshake failed: the certificate did not verify, or the name did not match.
        case tls(String)
        /// Nothing answered (refused, no such host, timed out).
        case connect(String)
        case badAnswer(String)
    }

    static func send(_ request: URLRequest, caFile: String?) async throws -> (Int, Data) {
        guard let url = request.url, let host = url.host else { throw Failure.badAnswer("no host in the URL") }
        let port = url.port ?? 443
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv12
        config.certificateVerification = .fullVerification
        if let caFile { config.trustRoots = .file(caFile) }
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: config) } catch {
            throw Failure.tls("cannot load the CA certificates of \(caFile ?? "the system"): \(error)")
        }
        let bareHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        // SNI and name checks take a host name; an IP address is checked against the certificate's IP entries.
        let isAddress = (try? SocketAddress(ipAddress: bareHost, port: 0)) != nil
        let timeout = request.timeoutInterval > 0 ? request.timeoutInterval : 30

        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: bareHost, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : bareHost)
                        try channel.pipeline.syncOperations.addHandler(tls)
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw Failure.connect("\(error)")
        }

        var path = url.path.isEmpty ? "/" : url.path
        if let query = url.query { path += "?" + query }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.httpMethod ?? "GET"), uri: path)
        head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        for (name, value) in request.allHTTPHeaderFields ?? [:] { head.headers.add(name: name, value: value) }
        head.headers.add(name: "Connection", value: "close")
        let body = request.httpBody
        head.headers.add(name: "Content-Length", value: "\(body?.count ?? 0)")
        let requestHead = head

        let exchange: @Sendable () async throws -> (Int, Data) = {
            do {
                return try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(.head(requestHead))
                    if let body, !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                    try await outbound.write(.end(nil))
                    var status = 0
                    var data = Data()
                    for try await part in inbound {
                        switch part {
                        case .head(let h): status = Int(h.status.code)
                        case .body(let b): data.append(contentsOf: b.readableBytesView)
                        case .end: return (status, data)
                        }
                    }
                    throw Failure.badAnswer("the connection closed before the answer ended")
                }
            } catch let error as Failure {
                throw error
            } catch {
                throw Self.classify(error)
            }
        }
        return try await withThrowingTaskGroup(of: (Int, Data).self) { group in
            group.addTask { try await exchange() }
            group.addTask {
                try await Task.sleep(for: .seconds(timeout))
                throw Failure.connect("no answer within \(Int(timeout)) s")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// A handshake error (the certificate or the name did not verify) is a
    /// TLS failure; anything else on the way is an unreachable coordinator.
    static func classify(_ error: any Error) -> Failure {
        switch error {
        case let error as NIOSSLError:
            if case .handshakeFailed(let inner) = error { return .tls("the handshake failed: \(inner)") }
            return .tls("\(error)")
        case let error as NIOSSLExtraError:
            return .tls("\(error)")
        case let error as BoringSSLError:
            return .tls("\(error)")
        default:
            return .connect("\(error)")
        }
    }
}
