#include "platform/signals.hpp"

#include <pthread.h>
#include <signal.h>

#include <initializer_list>

namespace peermq::detail {

void block_async_signals() noexcept {
    sigset_t set;
    sigfillset(&set);
    for (const int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) {
        sigdelset(&set, fault);
    }
    // Fails only for an invalid `how`: nothing to report.
    (void)pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace peermq::detail
