import FleetCore

extension RunSummary {
    /// The spec's `report:` settings where the summary leaves them out: the
    /// title (when the summary's is empty or just the pipeline name) and the
    /// chart's main aggregate. `bis stage run report` and the report task
    /// both apply it.
    public mutating func apply(_ settings: ReportSpec) {
        if let title = settings.title, self.title.isEmpty || self.title == pipeline { self.title = title }
        if mainAggregate == nil { mainAggregate = settings.mainAggregate?.description }
    }
}
