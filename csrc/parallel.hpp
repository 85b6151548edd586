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
//
// `Team` keeps n-1 worker threads alive for a sequence of short, equal
// jobs (the row blocks of one operator application): `run(fn)` calls
// fn(t, n) on every member t (the caller is member 0) and returns when all
// have finished. Workers wait by spinning briefly, then yielding. fn must not
// throw. A Team is used by one caller thread at a time.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
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
void parallel_for_impl(std::int64_t n_tasks, int n_threads, Fn&& fn,
                       const std::atomic<bool>* stop);

// As parallel_for, but fn(i, w) also gets the index w in [0, workers) of the
// thread running it, for per-thread scratch buffers.
template <class Fn>
void parallel_for_worker(std::int64_t n_tasks, int n_threads, Fn&& fn);

template <class Fn>
void parallel_for(std::int64_t n_tasks, int n_threads, Fn&& fn,
                  const std::atomic<bool>* stop = nullptr) {
    parallel_for_impl(n_tasks, n_threads, [&](std::int64_t i, int) { fn(i); }, stop);
}

template <class Fn>
void parallel_for_worker(std::int64_t n_tasks, int n_threads, Fn&& fn) {
    parallel_for_impl(n_tasks, n_threads, fn, nullptr);
}

inline int worker_count(std::int64_t n_tasks, int n_threads) {
    return static_cast<int>(std::max<std::int64_t>(
        1, std::min<std::int64_t>(resolve_threads(n_threads), n_tasks)));
}

template <class Fn>
void parallel_for_impl(std::int64_t n_tasks, int n_threads, Fn&& fn,
                       const std::atomic<bool>* stop) {
    if (n_tasks <= 0) return;
    const int workers = static_cast<int>(
        std::min<std::int64_t>(resolve_threads(n_threads), n_tasks));
    std::atomic<std::int64_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mutex;

    auto work = [&](int w) {
        for (;;) {
            if (failed.load(std::memory_order_relaxed)) return;
            if (stop && stop->load(std::memory_order_relaxed)) return;
            const std::int64_t i = next.fetch_add(1);
            if (i >= n_tasks) return;
            try {
                fn(i, w);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
                failed.store(true);
            }
        }
    };

    if (workers == 1) {
        work(0);
    } else {
        std::vector<std::thread> threads;
        threads.reserve(workers - 1);
        try {
            for (int t = 1; t < workers; ++t) threads.emplace_back(work, t);
        } catch (...) {
            failed.store(true);
            for (auto& th : threads) th.join();
            throw;
        }
        work(0);
        for (auto& th : threads) th.join();
    }
    if (error) std::rethrow_exception(error);
}

class Team {
public:
    explicit Team(int n) : n_(std::max(1, n)) {
        for (int t = 1; t < n_; ++t) workers_.emplace_back([this, t] { loop(t); });
    }
    ~Team() {
        stop_.store(true, std::memory_order_release);
        epoch_.fetch_add(1, std::memory_order_acq_rel);
        for (auto& th : workers_) th.join();
    }
    Team(const Team&) = delete;
    Team& operator=(const Team&) = delete;

    int size() const { return n_; }

    template <class Fn>
    void run(Fn&& fn) {
        if (n_ == 1) {
            fn(0, 1);
            return;
        }
        job_ = [&fn](int t, int n) { fn(t, n); };
        pending_.store(n_ - 1, std::memory_order_release);
        epoch_.fetch_add(1, std::memory_order_acq_rel);
        fn(0, n_);
        wait_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
    }

private:
    template <class Pred>
    static void wait_until(Pred&& ready) {
        for (int spin = 0; !ready(); ++spin)
            if (spin > 2000) std::this_thread::yield();
    }

    void loop(int t) {
        std::uint64_t seen = 0;
        for (;;) {
            wait_until([&] { return epoch_.load(std::memory_order_acquire) != seen; });
            seen = epoch_.load(std::memory_order_acquire);
            if (stop_.load(std::memory_order_acquire)) return;
            job_(t, n_);
            pending_.fetch_sub(1, std::memory_order_acq_rel);
        }
    }

    int n_;
    std::vector<std::thread> workers_;
    std::function<void(int, int)> job_;
    std::atomic<std::uint64_t> epoch_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
};

}  // namespace netmod
