import Columnar
import FleetCore
import Foundation
import Stages

extension TaskFailure {
    /// How an error from parsing a spec or running an operator is reported:
    /// the one place that decides permanent against transient.
    ///
    /// - permanent: the same inputs fail the same way again — a bad spec
    ///   (`SpecErrors`), expressions and casts (`ExpressionError`,
    ///   `CastError`), operator settings and schemas (`OperatorError`), a spec that
    ///   lacks what the stage needs (`StageInvocationError`), a
    ///   shard whose header or source is wrong (`IngestError` but `io`),
    ///   publish, report and deliver usage errors (a missing approval, a
    ///   target file that differs), Parquet that is corrupt or unsupported;
    /// - transient: the world may change — operating-system I/O errors, a
    ///   missing input file, a checksum that does not match (yet), HTTP
    ///   delivery errors worth a retry, and anything unrecognised (the
    ///   coordinator's attempt limit bounds the retries).
    ///
    /// Messages are the operators' own, which name the file, rule or column.
    public static func classify(_ error: any Error) -> TaskFailure {
        switch error {
        case let f as TaskFailure: return f
        case let e as MessageFieldError: return TaskFailure(.permanent, "refusing the task message: \(e)")
        case let e as SpecErrors: return TaskFailure(.permanent, e.description)
        case let e as ExpressionError: return TaskFailure(.permanent, e.description)
        case let e as CastError: return TaskFailure(.permanent, e.description)
        case let e as OperatorError: return TaskFailure(.permanent, e.description)
        case let e as ReportError: return TaskFailure(.permanent, e.description)
        case let e as StageInvocationError: return TaskFailure(.permanent, e.description)
        case let e as IngestError:
            if case .io = e { return TaskFailure(.transient, e.description) }
            return TaskFailure(.permanent, e.description)
        case let e as PublishError:
            if case .io = e { return TaskFailure(.transient, e.description) }
            return TaskFailure(.permanent, e.description)
        case let e as DeliveryError:
            return TaskFailure(e.isTransient ? .transient : .permanent, e.description)
        case let e as ColumnarError:
            switch e {
            case .io, .compression: return TaskFailure(.transient, e.description)
            case .unsupported, .corrupt, .invalidArgument: return TaskFailure(.permanent, e.description)
            }
        default:
            return TaskFailure(.transient, "\(error)")
        }
    }
}
