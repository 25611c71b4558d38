import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Delivery to an HTTP(S) endpoint: one POST of the receipt.
struct HTTPDelivery {
    let url: URL
    /// Sent as `Authorization: Bearer …`; never put in an error.
    let token: String?
    let timeout: TimeInterval

    /// At most this many bytes of an error response are quoted in the error.
    static let excerptLimit = 512

    func post(_ receipt: DeliveryReceipt) async throws {
        let shown = redactedURL(url)
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw DeliveryError.invalidTarget("deliver url \(shown) must be http:// or https://")
        }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue(receipt.idempotencyKey, forHTTPHeaderField: "Idempotency-Key")
        if let token { request.setValue("Bearer " + token, forHTTPHeaderField: "Authorization") }
        do {
            request.httpBody = try receipt.json()
        } catch {
            throw DeliveryError.io("cannot encode the receipt: \(error)")
        }

        // Redirects are not followed: the token must go only where the spec says.
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let data: Data
        let response: URLResponse
        do {
            // A completion-handler task bridged by a continuation; the
            // session delegate still decides about redirects.
            (data, response) = try await withCheckedThrowingContinuation { continuation in
                session.dataTask(with: request) { data, response, error in
                    if let error { return continuation.resume(throwing: error) }
                    guard let response else { return continuation.resume(throwing: URLError(.badServerResponse)) }
                    continuation.resume(returning: (data ?? Data(), response))
                }.resume()
            }
        } catch {
            throw DeliveryError.transport(url: shown, message: scrub(error.localizedDescription))
        }
        guard let http = response as? HTTPURLResponse else {
            throw DeliveryError.transport(url: shown, message: "the answer is not HTTP")
        }
        // 2xx: delivered now; 409: the endpoint already has this idempotency
        // key, so an earlier attempt delivered it.
        if (200..<300).contains(http.statusCode) || http.statusCode == 409 { return }
        throw DeliveryError.httpStatus(url: shown, status: http.statusCode, bodyExcerpt: excerpt(data))
    }

    /// The start of a response body as one line of text, at most
    /// `excerptLimit` bytes, the token (should a server echo it) masked.
    func excerpt(_ body: Data) -> String {
        var text = String(decoding: body.prefix(Self.excerptLimit), as: UTF8.self)
        text = String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
            .trimmingCharacters(in: .whitespaces)
        if body.count > Self.excerptLimit { text += " … (\(body.count) bytes)" }
        return scrub(text)
    }

    private func scrub(_ text: String) -> String {
        guard let token, !token.isEmpty else { return text }
        return text.replacingOccurrences(of: token, with: "***")
    }
}

/// Answers every redirect with "do not follow", so the 3xx itself comes back
/// and is reported.
final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
