import Foundation

/// An OpenLineage RunEvent (spec 2-0-2): one per execution start and end.
/// Each execution is an OpenLineage run whose parent is the BIS run, so
/// retries and duplicates show as separate runs of the same job. The BIS
/// run itself is an OpenLineage run too (job: the pipeline), with a START at
/// submit and a COMPLETE, FAIL or ABORT once it ended, so that the parent
/// the executions name exists. See docs/openlineage.md.
public struct OpenLineageEvent: Codable, Sendable, Hashable {
    public var eventType: String
    public var eventTime: String
    public var run: Run
    public var job: Job
    public var inputs: [Dataset]
    public var outputs: [Dataset]
    public var producer: String
    public var schemaURL: String

    public init(eventType: String, eventTime: String, run: Run, job: Job, inputs: [Dataset], outputs: [Dataset],
                producer: String, schemaURL: String) {
        self.eventType = eventType
        self.eventTime = eventTime
        self.run = run
        self.job = job
        self.inputs = inputs
        self.outputs = outputs
        self.producer = producer
        self.schemaURL = schemaURL
    }

    public struct Run: Codable, Sendable, Hashable {
        public var runId: String
        public var facets: RunFacets

        public init(runId: String, facets: RunFacets) {
            self.runId = runId
            self.facets = facets
        }
    }
    public struct RunFacets: Codable, Sendable, Hashable {
        public var parent: ParentFacet?
        public var errorMessage: ErrorFacet?
        /// On an execution's events; absent on the BIS run's own.
        public var bis_execution: ExecutionFacet?

        public init(parent: ParentFacet?, errorMessage: ErrorFacet?, bis_execution: ExecutionFacet?) {
            self.parent = parent
            self.errorMessage = errorMessage
            self.bis_execution = bis_execution
        }
    }
    public struct ParentFacet: Codable, Sendable, Hashable {
        public var _producer: String
        public var _schemaURL: String
        public var run: ParentRun
        public var job: JobRef

        public init(_producer: String, _schemaURL: String, run: ParentRun, job: JobRef) {
            self._producer = _producer
            self._schemaURL = _schemaURL
            self.run = run
            self.job = job
        }
    }
    public struct ParentRun: Codable, Sendable, Hashable {
        public var runId: String
        public init(runId: String) { self.runId = runId }
    }
    public struct JobRef: Codable, Sendable, Hashable {
        public var namespace: String
        public var name: String
        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }
    public struct ErrorFacet: Codable, Sendable, Hashable {
        public var _producer: String
        public var _schemaURL: String
        public var message: String
        public var programmingLanguage: String

        public init(_producer: String, _schemaURL: String, message: String, programmingLanguage: String) {
            self._producer = _producer
            self._schemaURL = _schemaURL
            self.message = message
            self.programmingLanguage = programmingLanguage
        }
    }
    /// BIS's own facet: which task, attempt and worker, and how it ended.
    public struct ExecutionFacet: Codable, Sendable, Hashable {
        public var _producer: String
        public var _schemaURL: String
        public var task: String
        public var execution: String
        public var attempt: Int
        public var state: String
        public var worker: String?

        public init(_producer: String, _schemaURL: String, task: String, execution: String, attempt: Int, state: String,
                    worker: String?) {
            self._producer = _producer
            self._schemaURL = _schemaURL
            self.task = task
            self.execution = execution
            self.attempt = attempt
            self.state = state
            self.worker = worker
        }
    }
    public struct Job: Codable, Sendable, Hashable {
        public var namespace: String
        public var name: String
        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }
    public struct Dataset: Codable, Sendable, Hashable {
        public var namespace: String
        public var name: String
        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }
}
