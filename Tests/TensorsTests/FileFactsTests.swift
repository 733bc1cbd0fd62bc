import Foundation
import Testing
@testable import Tensors

private final class Counter: @unchecked Sendable { var value = 0 }

@Test func aFileFactIsComputedOnceWhileTheFileIsUnchanged() throws {
    let folder = temporaryDirectory()
    let facts = FileFacts(directory: folder + "/facts", racyWindow: 0)
    let path = folder + "/data.bin"
    try AtomicFile.write([1, 2, 3, 4], to: path)
    let calls = Counter()
    let compute = { () -> String in calls.value += 1; return "v\(calls.value)" }
    #expect(try facts.fact(path, "sum", compute: compute) == "v1")
    #expect(try facts.fact(path, "sum", compute: compute) == "v1")
    #expect(calls.value == 1)
    #expect(facts.lookup(path, "sum") == "v1")
    // Another fact of the same file is kept beside the first.
    #expect(try facts.fact(path, "other") { "o" } == "o")
    #expect(facts.lookup(path, "sum") == "v1")

    // Rewritten in place with the same size: another status-change time, so computed again.
    usleep(10_000)
    let handle = try #require(FileHandle(forWritingAtPath: path))
    try handle.write(contentsOf: Data([9, 9, 9, 9]))
    try handle.close()
    #expect(facts.lookup(path, "sum") == nil)
    #expect(try facts.fact(path, "sum", compute: compute) == "v2")
    #expect(calls.value == 2)
}

@Test func aFactIsNotRecordedWhenTheFileChangesDuringTheScanOrJustChanged() throws {
    let folder = temporaryDirectory()
    let path = folder + "/data.bin"
    try AtomicFile.write([1, 2, 3, 4], to: path)
    // Written a moment ago: within the default 2 s window a same-tick write could go unnoticed.
    let careful = FileFacts(directory: folder + "/facts")
    #expect(try careful.fact(path, "sum") { "a" } == "a")
    #expect(careful.lookup(path, "sum") == nil)

    let facts = FileFacts(directory: folder + "/facts", racyWindow: 0)
    let value = try facts.fact(path, "sum") {
        usleep(10_000)
        try AtomicFile.write([5, 6, 7, 8], to: path)   // replaced while being read
        return "stale"
    }
    #expect(value == "stale")
    #expect(facts.lookup(path, "sum") == nil)
    // A failed computation records nothing.
    struct Failure: Error {}
    #expect(throws: Failure.self) { try facts.fact(path, "sum") { throw Failure() } }
    #expect(facts.lookup(path, "sum") == nil)
}
