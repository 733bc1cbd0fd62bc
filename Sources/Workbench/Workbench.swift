import Dispatch
import Quantization
import VideoDiT
#if canImport(Glibc)
import Glibc
#endif

/// The application core: holds the state, applies actions and runs background jobs. Jobs run on
/// a background queue and post their results as actions into `completed`; the UI thread calls
/// `drainCompletedJobs()` between input timeouts, so state is only ever mutated on that thread.
public final class Workbench: @unchecked Sendable {
    public private(set) var state: WorkbenchState
    public let session: CheckpointSession

    /// When false, statistics are computed inline (tests and headless rendering).
    private let runsJobsInBackground: Bool
    private let jobQueue = DispatchQueue(label: "stsq.workbench.jobs", qos: .userInitiated)
    private var mutex = pthread_mutex_t()
    private var completed: [Action] = []

    public init(session: CheckpointSession, backgroundJobs: Bool = true) {
        self.session = session
        self.state = WorkbenchState(checkpointName: session.displayName, checkpointPath: session.path,
                                    catalog: session.catalog)
        self.runsJobsInBackground = backgroundJobs
        pthread_mutex_init(&mutex, nil)
        startJobsIfNeeded()
    }

    deinit { pthread_mutex_destroy(&mutex) }

    public func dispatch(_ action: Action) {
        Reducer.apply(action, to: &state)
        startJobsIfNeeded()
    }

    /// Applies the results of finished jobs; returns whether anything changed.
    @discardableResult
    public func drainCompletedJobs() -> Bool {
        pthread_mutex_lock(&mutex)
        let actions = completed
        completed.removeAll()
        pthread_mutex_unlock(&mutex)
        for action in actions { dispatch(action) }
        return !actions.isEmpty
    }

    /// Whether a job is still running (the UI shows a spinner and keeps polling).
    public var hasRunningJobs: Bool {
        state.statistics.values.contains { $0 == .computing }
    }

    private func post(_ action: Action) {
        pthread_mutex_lock(&mutex)
        completed.append(action)
        pthread_mutex_unlock(&mutex)
    }

    private func startJobsIfNeeded() {
        guard let layer = state.selectedLayer, state.statistics[layer.name] == nil else { return }
        state.statistics[layer.name] = .computing
        let session = self.session
        let job: @Sendable () -> Action = {
            do {
                return .statisticsFinished(layer: layer.name, .success(try session.weightStatistics(for: layer)))
            } catch {
                return .statisticsFinished(layer: layer.name, .failure(WorkbenchError("\(error)")))
            }
        }
        if runsJobsInBackground {
            jobQueue.async { [weak self] in self?.post(job()) }
        } else {
            dispatch(job())
        }
    }
}
