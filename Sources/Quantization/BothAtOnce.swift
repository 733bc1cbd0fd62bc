import Dispatch

/// Runs `first` on another thread while `second` runs on this one, and returns both outcomes: two
/// whole-file passes of a first open (a hash, a finite scan) take the time of the longer one on
/// two cores instead of their sum.
func bothAtOnce<A: Sendable, B>(_ first: @escaping @Sendable () throws -> A, _ second: () throws -> B) -> (Result<A, Error>, Result<B, Error>) {
    let box = OutcomeBox<A>(), group = DispatchGroup()
    DispatchQueue.global().async(group: group) { box.result = Result { try first() } }
    let other = Result { try second() }
    group.wait()
    return (box.result!, other)
}

/// Where the other thread leaves its outcome; read only after the group's wait.
private final class OutcomeBox<A>: @unchecked Sendable {
    var result: Result<A, Error>?
}
