import Foundation

/// How long oneDNN's idle OpenMP threads spin before they sleep. libgomp's default (a spin of
/// 300,000 iterations after every parallel region) keeps a worker spinning through all the short
/// serial gaps of a forward pass; on the 2-core VMs this project runs on, a demo video then took
/// either 0.47 s or 0.69 s from one run to the next. A bounded spin of 10,000 iterations (≈ 0.1 ms)
/// measured 0.47–0.48 s every time; passive waiting (no spin) 0.70–0.88 s (`bench quantize`,
/// 2026-11-30, avx512_core_bf16). Under load `ThreadBudget` takes threads away instead.
///
/// libgomp reads its settings when it is loaded, before `main`, so the process re-executes itself
/// once with `GOMP_SPINCOUNT` set. A user's own `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` is left alone.
enum OpenMPWaitPolicy {
    static let spinCount = "10000"

    /// Re-executes the process with the bounded spin when neither setting is in the environment;
    /// returns (and the process goes on unchanged) if that cannot be done.
    static func applyBeforeOpenMPWork() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["GOMP_SPINCOUNT"] == nil, environment["OMP_WAIT_POLICY"] == nil else { return }
        setenv("GOMP_SPINCOUNT", spinCount, 1)
        let arguments = CommandLine.unsafeArgv
        execv("/proc/self/exe", arguments)
        unsetenv("GOMP_SPINCOUNT")   // exec failed: carry on with the defaults
    }
}
