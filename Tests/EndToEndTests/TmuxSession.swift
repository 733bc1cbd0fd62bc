import Foundation

/// Drives the real `stsq-tui` binary inside a private tmux server (`tmux -L`), the way a person
/// would: keys in, screen text out. The command runs under `sh`, which prints `EXIT:<status>`
/// after the program ends and stays alive so the restored terminal can be inspected.
final class TmuxSession {
    let socket = "stsq-e2e-\(UUID().uuidString.prefix(8))"

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let binary: String = {
        let beside = Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("stsq-tui")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("stsq-tui").path
    }()

    static func fixture(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/Fixtures/\(name)").path
    }

    init(arguments: [String], width: Int = 120, height: Int = 36, environment: [String: String] = [:]) throws {
        let env = (["TERM": "tmux-256color", "LC_ALL": "C.UTF-8"].merging(environment) { $1 }).map { "\($0.key)=\($0.value)" }.sorted()
        let quoted = ([TmuxSession.binary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        // `trap :` (a handler, not SIG_IGN, so the program still gets SIGINT) keeps the shell alive on Ctrl-C.
        let script = "trap : INT; ulimit -c 0; env \(env.joined(separator: " ")) \(quoted); echo EXIT:$?; sleep 600"
        try tmux(["new-session", "-d", "-x", "\(width)", "-y", "\(height)", script], capture: false)
    }

    deinit { _ = try? tmux(["kill-server"], capture: false) }

    /// Runs one tmux command and returns its standard output. `capture: false` sends output to
    /// /dev/null, for commands that may start the server (it would inherit a pipe and hold it open).
    @discardableResult
    func tmux(_ arguments: [String], capture: Bool = true) throws -> String {
        try runProcess(["tmux", "-f", "/dev/null", "-L", socket] + arguments, capture: capture)
    }

    func send(_ keys: String...) throws { try tmux(["send-keys"] + keys) }

    func screen() throws -> String { try tmux(["capture-pane", "-p"]) }

    func resize(width: Int, height: Int) throws {
        try tmux(["resize-window", "-x", "\(width)", "-y", "\(height)"])
    }

    var alternateScreenOn: Bool {
        (try? tmux(["display-message", "-p", "#{alternate_on}"]).trimmingCharacters(in: .whitespacesAndNewlines)) == "1"
    }

    /// PID of the program (the child of the pane's shell).
    func programPID() throws -> Int32? {
        let shell = try tmux(["display-message", "-p", "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let text = try runProcess(["pgrep", "-P", shell], capture: true)
        // `env` execs the program, so the shell's first child is it (the later `sleep` is not started yet).
        return text.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// Waits until the screen contains `text` (the machine may be busy: generous timeout).
    @discardableResult
    func waitFor(_ text: String, timeout: TimeInterval = 20) throws -> String {
        try waitUntil("\"\(text)\"", timeout: timeout) { $0.contains(text) }
    }

    /// Waits until `condition` holds for the screen text.
    @discardableResult
    func waitUntil(_ description: String, timeout: TimeInterval = 20, _ condition: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try screen()
            if condition(last) { return last }
            usleep(50_000)
        }
        throw TmuxTimeout(expected: description, screen: last)
    }
}

struct TmuxTimeout: Error, CustomStringConvertible {
    let expected: String
    let screen: String
    var description: String { "timed out waiting for \(expected); screen:\n\(screen)" }
}

/// posix_spawn + waitpid: Foundation's Process can miss the exit of a client whose forked
/// daemon (the tmux server) lives on.
func runProcess(_ arguments: [String], capture: Bool) throws -> String {
    var fileActions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fileActions)
    defer { posix_spawn_file_actions_destroy(&fileActions) }
    var pipeFDs: [Int32] = [-1, -1]
    if capture {
        guard pipe(&pipeFDs) == 0 else { throw SpawnError(command: arguments) }
        posix_spawn_file_actions_adddup2(&fileActions, pipeFDs[1], STDOUT_FILENO)
        posix_spawn_file_actions_addclose(&fileActions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&fileActions, pipeFDs[1])
    } else {
        posix_spawn_file_actions_addopen(&fileActions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
    }
    posix_spawn_file_actions_addopen(&fileActions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&fileActions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
    // The test runner blocks some signals in its threads and a child inherits the mask: start
    // tmux (and so the program) with none blocked and default handlers, as a shell would.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    var all = sigset_t()
    sigfillset(&all)
    sigdelset(&all, SIGKILL)
    sigdelset(&all, SIGSTOP)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let status = posix_spawnp(&pid, arguments[0], &fileActions, &attributes, argv, environ)
    if capture { close(pipeFDs[1]) }
    guard status == 0 else {
        if capture { close(pipeFDs[0]) }
        throw SpawnError(command: arguments)
    }
    var output: [UInt8] = []
    if capture {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(pipeFDs[0], &buffer, buffer.count)
            if n > 0 { output += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        close(pipeFDs[0])
    }
    var exitStatus: Int32 = 0
    while waitpid(pid, &exitStatus, 0) < 0 && errno == EINTR {}
    return String(decoding: output, as: UTF8.self)
}

struct SpawnError: Error { let command: [String] }
