// Errors a pipeline spec can have, each tied to the place in the YAML file
// that causes it, in the form compilers use: `spec.yml:12:5: message`.

/// A line and column in the spec file, both counted from 1. Columns count
/// Unicode scalars, as libyaml does.
public struct SpecLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }

    public static func < (a: SpecLocation, b: SpecLocation) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// One problem with a spec. Its `description` is what the CLI prints
/// (and then exits with status 2): `spec.yml:12:5: unknown key 'partiton_by'
/// in consolidate; did you mean 'partition_by'?`.
public struct SpecError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The spec file as the user named it (or a label such as `spec.yml`).
    public var file: String
    /// Where in the file; nil when the problem is not at one place
    /// (the file cannot be read, say).
    public var location: SpecLocation?
    /// What is wrong and, where it helps, what to do.
    public var message: String

    public init(file: String, location: SpecLocation?, message: String) {
        self.file = file
        self.location = location
        self.message = message
    }

    public var description: String {
        if let location { return "\(file):\(location): \(message)" }
        return "\(file): \(message)"
    }
}

/// Every problem found in one spec, in file order. Loading collects as many
/// as it can rather than stopping at the first; its description has one
/// problem per line.
public struct SpecErrors: Error, Sendable, Hashable, CustomStringConvertible {
    public var errors: [SpecError]
    /// Some glob lies or leads outside the allowed input roots: a refusal
    /// of where the spec reads, not a mistake in its text (the coordinator
    /// answers 403 rather than 400).
    public var outsideRoots = false

    public init(_ errors: [SpecError]) {
        self.errors = errors
    }

    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}

/// Collects errors while a spec is decoded and checked.
struct ErrorSink {
    let file: String
    private(set) var errors: [SpecError] = []

    init(file: String) {
        self.file = file
    }

    mutating func add(_ location: SpecLocation?, _ message: String) {
        let error = SpecError(file: file, location: location, message: message)
        if !errors.contains(error) { errors.append(error) }
    }

    /// The collected errors in file order (errors without a place first),
    /// keeping discovery order among errors at the same place.
    func sorted() -> [SpecError] {
        errors.enumerated().sorted { a, b in
            let la = a.element.location ?? SpecLocation(line: 0, column: 0)
            let lb = b.element.location ?? SpecLocation(line: 0, column: 0)
            return la == lb ? a.offset < b.offset : la < lb
        }.map(\.element)
    }
}

/// "did you mean" help: the closest candidate within edit distance 2, if any.
func suggestion(for word: String, among candidates: [String]) -> String? {
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let d = editDistance(word, candidate)
        if d <= 2, d < (best?.distance ?? Int.max) { best = (candidate, d) }
    }
    return best?.name
}

/// "; did you mean 'x'?" or nothing.
func didYouMean(_ word: String, _ candidates: [String]) -> String {
    suggestion(for: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
}

/// Levenshtein distance over Unicode scalars, with a swap of two adjacent
/// letters counted as one edit (`partiton_by` is one edit from `partition_by`).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous2 = [Int](repeating: 0, count: y.count + 1)
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                current[j] = min(current[j], previous2[j - 2] + 1)
            }
        }
        (previous2, previous, current) = (previous, current, previous2)
    }
    return previous[y.count]
}
