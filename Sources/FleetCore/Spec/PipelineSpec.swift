import Columnar
import Foundation
import Yams

/// A pipeline spec, decoded from YAML and checked: the sources and their
/// columns, the normalize steps, and the settings of the later stages.
/// See docs/spec.md for the format.
///
/// ```swift
/// let spec = try PipelineSpec.load(path: "pipelines/lineitem.yml")
/// // throws SpecErrors; its description is one `file:line:column: message` per problem
/// ```
public struct PipelineSpec: Sendable, Hashable {
    /// `pipeline:` lower-case letters, digits, `_` and `-`.
    public var name: String
    /// The spec file as named by the caller; used in error messages.
    public var file: String
    /// The absolute folder that relative `files:` globs start from.
    public var directory: String
    /// Absolute folders (symlinks resolved) that input files must lie under:
    /// the spec's folder, then any the caller added.
    public var allowedRoots: [String]
    /// In spec order; at least one.
    public var sources: [SourceSpec]
    public var normalize: [NormalizeStep]
    public var consolidate: ConsolidateSpec?
    /// `validate:` row rules and run gates, typed and checked against `columns`.
    public var validate: ValidateSpec
    public var publish: PublishSpec?
    /// `report:` kept as written until the report stage types it.
    public var report: SpecValue?
    /// `deliver:` kept as written until the deliver stage types it.
    public var deliver: SpecValue?
    /// The columns the sources declare (the first source's order), which
    /// normalize starts from.
    public var inputColumns: [SpecColumn]
    /// The columns after every normalize step: what consolidate, validate
    /// and publish see.
    public var columns: [SpecColumn]
    /// `schedule:` and `params:` (registered pipelines; docs/schedules.md).
    public var header = SpecHeader()
    /// `notify:` the pipeline owners' alert receivers (docs/alerts.md).
    public var notify: [NotifySpec] = []
    /// `timeouts:` per stage; nil for none.
    public var timeouts: TimeoutsSpec? = nil
    /// `deadline:` when a run must have finished; nil for none.
    public var deadline: DeadlineSpec? = nil

    /// The sources' columns as a Columnar schema.
    public var inputSchema: Schema {
        Schema(inputColumns.map { Field($0.name, $0.type ?? .string, nullable: $0.nullable) })
    }

    /// The normalized columns as a Columnar schema; nil while a derived
    /// column's type is unknown (no expression checker and no declared type).
    public var outputSchema: Schema? {
        var fields: [Field] = []
        for column in columns {
            guard let type = column.type else { return nil }
            fields.append(Field(column.name, type, nullable: column.nullable))
        }
        return Schema(fields)
    }

    /// Reads, decodes and checks the spec at `path`, then (unless
    /// `resolvingInputs` is false) resolves every `files:` glob under the
    /// allowed roots. Relative globs start at the spec's folder, which is
    /// always an allowed root; `allowedRoots` adds more (relative ones start
    /// at the current directory, as paths given on a command line do).
    ///
    /// Throws `SpecErrors` listing every problem found.
    public static func load(
        path: String,
        allowedRoots: [String] = [],
        expressionChecker: (any ExpressionChecker)? = ExpressionLanguageChecker(),
        resolvingInputs: Bool = true
    ) throws(SpecErrors) -> PipelineSpec {
        let url = URL(fileURLWithPath: path)
        let yaml: String
        do {
            yaml = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw SpecErrors([SpecError(file: path, location: nil, message: "cannot read the spec: \(error.localizedDescription)")])
        }
        var spec = try parse(yaml: yaml, file: path, directory: url.deletingLastPathComponent().path,
                             allowedRoots: allowedRoots, expressionChecker: expressionChecker)
        if resolvingInputs { try spec.resolveInputs() }
        return spec
    }

    /// Decodes and checks a spec from text without touching input files
    /// (call `resolveInputs()` for that). `file` names it in errors;
    /// `directory` is where relative globs will start.
    public static func parse(
        yaml: String,
        file: String = "spec.yml",
        directory: String,
        allowedRoots: [String] = [],
        expressionChecker: (any ExpressionChecker)? = ExpressionLanguageChecker()
    ) throws(SpecErrors) -> PipelineSpec {
        // `${date}` and `${param}` (docs/spec.md, run parameters): a run's
        // text comes filled in; a text with placeholders is checked with
        // today's date and the parameters' defaults.
        let yaml = SpecTemplate.unescape(try SpecTemplate.expandForCheck(yaml, file: file))
        if let at = SpecSize.aliasOverflow(yaml) {
            throw SpecErrors([SpecSize.overflowError(file: file, at: at)])
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw SpecErrors([yamlError(error, file: file)])
        }
        guard let root else {
            throw SpecErrors([SpecError(file: file, location: nil, message: "the spec is empty; it needs at least 'pipeline' and 'sources'")])
        }
        if let at = SpecSize.overflow(root) {
            throw SpecErrors([SpecSize.overflowError(file: file, at: at)])
        }
        let absoluteDirectory = PathResolver.absolute(directory, relativeTo: FileManager.default.currentDirectoryPath)
        var loader = SpecLoader(yaml: yaml, file: file, checker: expressionChecker)
        let spec = loader.load(root, directory: absoluteDirectory,
                               allowedRoots: allowedRoots.map { PathResolver.absolute($0, relativeTo: FileManager.default.currentDirectoryPath) })
        let errors = loader.sink.sorted()
        guard errors.isEmpty, let spec else { throw SpecErrors(errors) }
        return spec
    }

    /// Turns a Yams parse error into a positioned spec error.
    static func yamlError(_ error: any Error, file: String) -> SpecError {
        guard let yamlError = error as? YamlError else {
            return SpecError(file: file, location: nil, message: "not valid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "not valid YAML: \(problem)"
            if let context { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            return SpecError(file: file, location: SpecLocation(mark), message: message)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return SpecError(file: file, location: SpecLocation(context.mark),
                             message: "duplicate key \(names) in one mapping; each key may appear once")
        default:
            return SpecError(file: file, location: nil, message: "not valid YAML: \(yamlError)")
        }
    }
}

/// A column as the spec checker tracks it through normalize.
public struct SpecColumn: Sendable, Hashable {
    public var name: String
    /// Nil only for a derived column whose type is not known at load time.
    public var type: ColumnType?
    public var nullable: Bool

    public init(name: String, type: ColumnType?, nullable: Bool = true) {
        self.name = name
        self.type = type
        self.nullable = nullable
    }
}
