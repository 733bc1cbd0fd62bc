import CNCursesW
#if canImport(Glibc)
import Glibc
#endif

// Restores the terminal on every way out: normal exit (atexit), Ctrl-C/SIGTERM/SIGHUP, and
// crashes (a Swift runtime trap raises SIGILL/SIGTRAP). Signal handlers may only use
// async-signal-safe calls, so the reset is prepared ahead of time: the termios saved before
// ncurses started, and the terminal's own reset sequences read from terminfo.

nonisolated(unsafe) private var savedTermios = termios()
nonisolated(unsafe) private var resetBytes: UnsafeMutablePointer<UInt8>?
nonisolated(unsafe) private var resetCount = 0
nonisolated(unsafe) var terminalIsActive = false
nonisolated(unsafe) private var previousActions: [Int32: sigaction] = [:]
nonisolated(unsafe) private var exitHandlerRegistered = false

enum TerminalRestore {
    static let fatalSignals: [Int32] = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT]
    static let quitSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    /// Before ncurses starts.
    static func saveTerminalModes() {
        tcgetattr(STDIN_FILENO, &savedTermios)
    }

    /// After ncurses started (terminfo loaded): prepare the reset sequence, install handlers.
    static func install() {
        // Leave the alternate screen, show the cursor, reset attributes, stop mouse reporting.
        var sequence: [UInt8] = []
        for capability in ["sgr0", "cnorm", "rmkx", "rmcup"] {
            if let s = stsq_tigetstr(capability) {
                var p = s
                while p.pointee != 0 { sequence.append(UInt8(bitPattern: p.pointee)); p += 1 }
            }
        }
        sequence += Array("\u{1b}[?1000l\u{1b}[?1002l\u{1b}[?1006l\u{1b}[?2004l\r\n".utf8)
        resetBytes?.deallocate()
        resetBytes = .allocate(capacity: sequence.count)
        resetBytes!.initialize(from: sequence, count: sequence.count)
        resetCount = sequence.count

        // A parent may have started us with these blocked; resize and quit must get through.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for sig in quitSignals + fatalSignals + [SIGWINCH] { sigaddset(&unblock, sig) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        for sig in quitSignals + fatalSignals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                emergencyRestore()
                Glibc.signal(signal, SIG_DFL)
                raise(signal)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            var previous = sigaction()
            sigaction(sig, &action, &previous)
            // Keep the first saved action: a second install must not save our own handler.
            if previousActions[sig] == nil { previousActions[sig] = previous }
        }
        // atexit handlers cannot be removed, so register one for the whole process.
        guard !exitHandlerRegistered else { return }
        exitHandlerRegistered = true
        atexit {
            if terminalIsActive {
                terminalIsActive = false
                Terminal.setBracketedPaste(false)
                endwin()
            }
        }
    }

    /// Puts back the signal actions that were in place before `install`.
    static func uninstall() {
        for sig in quitSignals + fatalSignals {
            if var previous = previousActions[sig] {
                sigaction(sig, &previous, nil)
            } else {
                signal(sig, SIG_DFL)
            }
        }
        previousActions = [:]
    }
}

/// Async-signal-safe: restores the saved termios and writes the reset sequence.
private func emergencyRestore() {
    guard terminalIsActive else { return }
    terminalIsActive = false
    tcsetattr(STDIN_FILENO, TCSANOW, &savedTermios)
    if let resetBytes { _ = write(STDOUT_FILENO, resetBytes, resetCount) }
}
