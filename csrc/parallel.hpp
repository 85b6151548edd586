// parallel.hpp — the one thread pool primitive of netmod.
//
// Contract: `parallel_for(n_tasks, n_threads, fn)` calls fn(i) exactly once for
// every i in [0, n_tasks), spread over min(n_threads, n_tasks) std::threads that
// take indices from an atomic counter. The first exception thrown by any fn is
// re-thrown in the caller after every thread has joined (never std::terminate);
// remaining tasks are skipped once an exception is seen. n_threads <= 0 means
// std::thread::hardware_concurrency(). Results must be written by fn to slot i
// of caller-owned storage, which makes the output independent of scheduling.
// `stop` (optional) is polled between tasks so a caller can cancel a run.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace netmod {

inline int resolve_threads(int n_threads) {
    if (n_threads > 0) return n_threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

template <class Fn>
void parallel_for(std::int64_t n_tasks, int n_threads, Fn&& fn,
                  const std::atomic<bool>* stop = nullptr) {
    if (n_tasks <= 0) return;
    const int workers = static_cast<int>(
        std::min<std::int64_t>(resolve_threads(n_threads), n_tasks));
    std::atomic<std::int64_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mutex;

    auto work = [&]() {
        for (;;) {
            if (failed.load(std::memory_order_relaxed)) return;
            if (stop && stop->load(std::memory_order_relaxed)) return;
            const std::int64_t i = next.fetch_add(1);
            if (i >= n_tasks) return;
            try {
                fn(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
                failed.store(true);
            }
        }
    };

    if (workers == 1) {
        work();
    } else {
        std::vector<std::thread> threads;
        threads.reserve(workers - 1);
        try {
            for (int t = 0; t + 1 < workers; ++t) threads.emplace_back(work);
        } catch (...) {
            failed.store(true);
            for (auto& th : threads) th.join();
            throw;
        }
        work();
        for (auto& th : threads) th.join();
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace netmod
