import Columnar
import FleetCore

/// The checked pipeline spec turned into the operators' settings: the one
/// place where FleetCore's spec vocabulary meets the stage operators.
public enum SpecOperators {
    /// The published dataset's schema when no validated chunk carries it
    /// (a run whose rows were all filtered out): the spec's declared output
    /// schema, else what normalize would write; with the provenance columns
    /// when the spec publishes them.
    public static func datasetSchema(_ spec: PipelineSpec) -> Schema? {
        guard let schema = spec.outputSchema ?? (try? normalize(spec).outputSchema) else { return nil }
        return spec.publish?.provenance == true ? Schema(schema.fields + Provenance.fields) : schema
    }

    /// The normalize operations of `spec`, with every `derive` and `filter`
    /// compiled against the columns the earlier steps leave, and the caster
    /// `cast` steps use. `inputSchema` is what ingest wrote (the sources'
    /// columns); the result's `outputSchema` is what normalize writes.
    public static func normalize(_ spec: PipelineSpec, inputSchema: Schema? = nil) throws -> CompiledNormalize {
        var schema = inputSchema ?? spec.inputSchema
        var ops: [NormalizeOp] = []
        let caster = ExpressionCaster()
        // Each op is applied to an empty batch of the current schema, which
        // yields the next schema exactly as the operator will produce it.
        func add(_ op: NormalizeOp) throws {
            ops.append(op)
            schema = try Normalizer(steps: [op], caster: caster).apply(ColumnBatch.empty(schema)).schema
        }
        for step in spec.normalize {
            switch step.operation {
            case .rename(let pairs): try add(.rename(pairs.map { (from: $0.from, to: $0.to) }))
            case .select(let columns): try add(.select(columns))
            case .drop(let columns): try add(.drop(columns))
            case .trim(let columns): try add(.trim(columns))
            case .upper(let columns): try add(.upper(columns))
            case .lower(let columns): try add(.lower(columns))
            case .cast(let casts):
                for c in casts { try add(.cast(column: c.column, to: c.type)) }
            case .fillNull(let fills):
                for f in fills {
                    // `fill_null: {c: null}` fills nothing: the spec allows it, the op needs a value.
                    if let value = f.value { try add(.fillNull(column: f.column, value: value)) }
                }
            case .derive(let derived):
                for d in derived {
                    let typed = try compile(d.expression, schema: schema, at: step.location)
                    try add(.derive(name: d.name, CompiledExpression(typed, as: d.declaredType)))
                }
            case .filter(let expression):
                try add(.filter(CompiledExpression(try compile(expression, schema: schema, at: step.location), as: nil)))
            }
        }
        return CompiledNormalize(ops: ops, caster: caster, inputSchema: inputSchema ?? spec.inputSchema, outputSchema: schema)
    }

    /// Consolidate's settings; nil when the spec has no `consolidate` section.
    public static func consolidate(_ spec: PipelineSpec) -> (partitionBy: [String], sortBy: [String], dedupe: DedupeRule?, options: ConsolidateOptions)? {
        guard let c = spec.consolidate else { return nil }
        var options = ConsolidateOptions()
        options.memoryBudgetBytes = c.memoryBudget.bytes
        let dedupe = c.dedupe.map { d -> DedupeRule in
            switch d.keep {
            case .first: return DedupeRule(key: d.key, keep: .first)
            case .latest(let by): return DedupeRule(key: d.key, keep: .latest(by: by))
            }
        }
        return (c.partitionBy, c.sortBy, dedupe, options)
    }

    private static func compile(_ e: SpecExpression, schema: Schema, at: SpecLocation) throws -> TypedExpression {
        do {
            return try Expression.parse(e.text).check(schema)
        } catch {
            // The spec checker reports these with their YAML position before
            // anything runs; reaching here means the spec was not checked.
            throw OperatorError.invalidSetting("expression '\(e.text)' at \(e.location): \(error)")
        }
    }
}

/// What normalize runs for a spec.
public struct CompiledNormalize: Sendable {
    public let ops: [NormalizeOp]
    public let caster: any ColumnCaster
    public let inputSchema: Schema
    public let outputSchema: Schema
}

/// A type-checked expression as the normalize operator sees it, cast to the
/// spec's declared type when it has one (`derive: {c: {expr: …, type: …}}`).
struct CompiledExpression: BatchExpression {
    let typed: TypedExpression
    let declared: ColumnType?

    init(_ typed: TypedExpression, as declared: ColumnType?) {
        self.typed = typed
        self.declared = declared
    }

    var type: ColumnType { declared ?? typed.type }

    func evaluate(_ batch: ColumnBatch) throws -> Column {
        let column = try typed.evaluate(batch)
        guard let declared, declared != column.type else { return column }
        return try Cast.cast(column, to: declared)
    }
}

/// `cast` steps through the expression language's SQL-like casts. In
/// normalize a value that cannot be cast quarantines its row
/// (`castCollecting`); a cast between types that never convert fails.
struct ExpressionCaster: ColumnCaster {
    func cast(_ column: Column, to type: ColumnType, name: String) throws -> Column {
        do {
            return try Cast.cast(column, to: type)
        } catch {
            throw OperatorError.invalidSetting("cast '\(name)': \(error)")
        }
    }

    func castCollecting(_ column: Column, to type: ColumnType, name: String) throws -> (column: Column, rejected: [CastRejection]) {
        do {
            let r = try Cast.castCollectingFailures(column, to: type)
            return (r.column, r.failures.map { CastRejection(row: $0.row, value: $0.value, reason: $0.reason) })
        } catch {
            throw OperatorError.invalidSetting("cast '\(name)': \(error)")
        }
    }
}

extension SpecOperators {
    /// How ingest reads one of the spec's sources.
    public static func ingestSource(_ s: SourceSpec) -> IngestSource {
        let csv = s.csv ?? CSVOptions()
        let format: IngestSource.Format
        switch s.format {
        case .csv: format = .csv
        case .jsonl: format = .jsonl
        case .parquet: format = .parquet
        }
        return IngestSource(
            format: format,
            columns: s.schema.fields,
            header: csv.header, delimiter: csv.delimiter, quote: csv.quote, nullMarkers: csv.nulls,
            missingColumns: s.missingColumns == .error ? .error : .fillNull,
            extraColumns: s.extraColumns == .error ? .error : .ignore)
    }
}
