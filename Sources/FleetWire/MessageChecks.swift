import Foundation

/// The fields of a message checked before anything is built from them:
/// ids become folder names (`runs/<run>/<stage>/<index>/<execution>`), so an
/// id is one plain path component or the message is refused.
public struct MessageFieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field as the message names it: `execution`, `inputs[2].path`.
    public let field: String
    public let value: String
    public let problem: String

    public init(field: String, value: String, problem: String) {
        self.field = field
        self.value = value
        self.problem = problem
    }

    public var description: String { "field \(field) '\(Self.shown(value))' \(problem)" }

    /// At most 200 characters of a value, control characters escaped.
    static func shown(_ value: String) -> String {
        let cut = value.count > 200 ? String(value.prefix(200)) + "…" : value
        return cut.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }
            .joined()
    }
}

extension FleetIDs {
    /// Most characters of a run or execution id.
    public static let maximumIDLength = 128

    /// Whether `id` may be a run or execution id: 1 to 128 of `A-Z a-z 0-9
    /// . _ -`, starting with a letter or digit (never `.` or `..`, never a
    /// `/`): one plain path component.
    public static func isValidID(_ id: String) -> Bool {
        let u = id.utf8
        guard !u.isEmpty, u.count <= maximumIDLength else { return false }
        for (i, c) in u.enumerated() {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                continue
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                if i == 0 { return false }
            default:
                return false
            }
        }
        return true
    }

    /// Throws unless `value` is a valid id (see `isValidID`).
    public static func check(_ value: String, field: String) throws(MessageFieldError) {
        guard isValidID(value) else {
            throw MessageFieldError(field: field, value: value, problem: "is not a valid id (1 to \(maximumIDLength) of "
                                    + "A-Z a-z 0-9 . _ -, starting with a letter or digit)")
        }
    }

    static func check(index: Int, field: String = "index") throws(MessageFieldError) {
        guard index >= 0 else { throw MessageFieldError(field: field, value: String(index), problem: "is negative") }
    }
}

extension ChunkStore {
    /// Throws unless `path` is a chunk path a message may name: relative,
    /// without `.`, `..` or empty segments, without NUL. Lexical only (see
    /// `absolute` for symlinks).
    public static func checkRelative(_ path: String, field: String) throws(MessageFieldError) {
        if path.isEmpty { throw MessageFieldError(field: field, value: path, problem: "is empty") }
        if path.utf8.contains(0) { throw MessageFieldError(field: field, value: path, problem: "contains a NUL byte") }
        if path.hasPrefix("/") {
            throw MessageFieldError(field: field, value: path, problem: "is absolute; chunk paths in messages are relative to the data root")
        }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
            if segment == ".." { throw MessageFieldError(field: field, value: path, problem: "contains '..'") }
            if segment == "." || segment.isEmpty {
                throw MessageFieldError(field: field, value: path, problem: "has an empty or '.' segment")
            }
        }
    }
}

extension TaskMessage {
    /// The ids and chunk paths checked (a task from the coordinator always
    /// passes): run id, index, and every non-source input's path relative
    /// inside the data root. Source paths are checked against the spec's
    /// allowed roots where they are read.
    public func validate() throws(MessageFieldError) {
        try FleetIDs.check(run, field: "run")
        try FleetIDs.check(index: index)
        guard attempt >= 1 else { throw MessageFieldError(field: "attempt", value: String(attempt), problem: "is less than 1") }
        for (i, input) in inputs.enumerated() where input.kind != .source {
            try ChunkStore.checkRelative(input.path, field: "inputs[\(i)].path")
        }
    }
}

extension TaskEvent {
    /// The ids and output paths checked before the coordinator builds any
    /// path from them: run and execution ids, index, and every output's path
    /// relative inside the data root (a delivery's files, written outside
    /// it, may be absolute but never hold `..`).
    public func validate() throws(MessageFieldError) {
        try FleetIDs.check(run, field: "run")
        try FleetIDs.check(execution, field: "execution")
        try FleetIDs.check(index: index)
        let all = outputs.enumerated().map { ("outputs[\($0.offset)].path", $0.element) }
            + (followers ?? []).enumerated().flatMap { f in
                f.element.outputs.enumerated().map { ("followers[\(f.offset)].outputs[\($0.offset)].path", $0.element) }
            }
        for (field, output) in all {
            if output.kind == .delivery, output.path.hasPrefix("/") {
                if output.path.split(separator: "/").contains("..") || output.path.utf8.contains(0) {
                    throw MessageFieldError(field: field, value: output.path, problem: "contains '..' or a NUL byte")
                }
                continue
            }
            try ChunkStore.checkRelative(output.path, field: field)
        }
    }
}
