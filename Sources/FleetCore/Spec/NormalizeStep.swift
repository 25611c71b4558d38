import Columnar

/// One step of `normalize:`, applied in order to every row of a shard.
public struct NormalizeStep: Sendable, Hashable {
    public var operation: NormalizeOperation
    /// Where the step starts in the spec (its `- ` entry).
    public var location: SpecLocation

    public init(_ operation: NormalizeOperation, location: SpecLocation) {
        self.operation = operation
        self.location = location
    }
}

/// What a normalize step does. Column names refer to the schema as the
/// earlier steps left it.
public enum NormalizeOperation: Sendable, Hashable {
    /// `rename: {old: new}`: renames in place, keeping the column order.
    case rename([ColumnRename])
    /// `select: [cols]`: keeps only these columns, in this order.
    case select([String])
    /// `drop: [cols]`: removes these columns.
    case drop([String])
    /// `cast: {col: type}`: converts values; a value that does not convert
    /// sends its row to quarantine.
    case cast([ColumnCast])
    /// `trim: [cols]`: strips leading and trailing white space (string columns).
    case trim([String])
    /// `upper: [cols]`: upper-cases (string columns).
    case upper([String])
    /// `lower: [cols]`: lower-cases (string columns).
    case lower([String])
    /// `fill_null: {col: literal}`: replaces nulls by a constant.
    case fillNull([FillNull])
    /// `derive: {name: "expression"}`: adds (or replaces) a column computed
    /// per row; appended at the end when new.
    case derive([DerivedColumn])
    /// `filter: "expression"`: keeps the rows where the boolean expression
    /// is true (null counts as false).
    case filter(SpecExpression)

    /// The YAML key of this kind of step.
    public var key: String {
        switch self {
        case .rename: return "rename"
        case .select: return "select"
        case .drop: return "drop"
        case .cast: return "cast"
        case .trim: return "trim"
        case .upper: return "upper"
        case .lower: return "lower"
        case .fillNull: return "fill_null"
        case .derive: return "derive"
        case .filter: return "filter"
        }
    }

    static let keys = ["rename", "select", "drop", "cast", "trim", "upper", "lower", "fill_null", "derive", "filter"]
}

public struct ColumnRename: Sendable, Hashable {
    public var from: String
    public var to: String
    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }
}

public struct ColumnCast: Sendable, Hashable {
    public var column: String
    public var type: ColumnType
    public init(column: String, type: ColumnType) {
        self.column = column
        self.type = type
    }
}

/// `fill_null` for one column.
public struct FillNull: Sendable, Hashable {
    public var column: String
    /// The literal as written in the spec.
    public var text: String
    /// The literal converted to the column's type (dates as days, decimals
    /// unscaled, and so on, as `Scalar` documents); nil when the column's
    /// type is not known at load time (a derived column without a type).
    public var value: Scalar?

    public init(column: String, text: String, value: Scalar?) {
        self.column = column
        self.text = text
        self.value = value
    }
}

/// One `derive` entry: `name: "expression"`, or with a declared type
/// `name: {expr: "expression", type: decimal(15,2)}`.
public struct DerivedColumn: Sendable, Hashable {
    public var name: String
    public var expression: SpecExpression
    /// The type written in the spec, if any; the result is cast to it.
    public var declaredType: ColumnType?
    /// The column's type as the spec checker settled it: the declared type,
    /// else the expression checker's answer, else nil (no checker was given).
    public var type: ColumnType?

    public init(name: String, expression: SpecExpression, declaredType: ColumnType?, type: ColumnType?) {
        self.name = name
        self.expression = expression
        self.declaredType = declaredType
        self.type = type
    }
}

/// An expression as the spec wrote it: its source text and where the YAML
/// string holding it starts (the opening quote, if quoted). Parsing and
/// type checking belong to the expression language; see `ExpressionChecker`.
public struct SpecExpression: Sendable, Hashable {
    public var text: String
    public var location: SpecLocation

    public init(_ text: String, location: SpecLocation) {
        self.text = text
        self.location = location
    }
}
