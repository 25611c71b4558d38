/// The version every executable and every written file reports.
public enum FleetVersion {
    public static let string = "0.1.0"
    /// Used as Parquet `created_by` and in worker registrations.
    public static let createdBy = "bis-fleet version \(string)"
}
