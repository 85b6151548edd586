// parallel.hpp — netmod's one thread pool.
//
// Contract
// - `ThreadPool pool(n_threads)`: n = resolve_threads(n_threads) members, the
//   calling thread being member 0 and n - 1 persistent std::threads the
//   others (n_threads <= 0 means std::thread::hardware_concurrency()). A
//   refused thread is a std::system_error from the constructor.
// - `pool.run(fn)`: calls fn(t, n) once on every member t in [0, n) and
//   returns when all have finished. For many short equal jobs in a row (the
//   row blocks of each operator application of an eigensolve).
// - `pool.for_each(n_tasks, fn, stop)`: calls fn(i, w) exactly once for every
//   i in [0, n_tasks), on w in [0, worker_count(n_tasks, n)) members that
//   take indices from an atomic counter; w is for per-worker scratch
//   buffers. `stop` (optional) is polled between tasks to cancel a run.
// - Errors: the first exception thrown by any fn is re-thrown in the caller
//   after every member has finished (never std::terminate); for_each skips
//   the tasks not yet started once one has thrown.
// - Determinism is the caller's part: fn writes task i's result to slot i of
//   caller-owned storage (and draws from an RNG seeded from i), so the output
//   does not depend on n or on the scheduling.
// Waiting: between jobs a worker blocks on a condition variable, and so does
// the caller when its own part is done before the workers', so idle workers
// (the serial phases of an eigensolve, a pool kept for later) use no CPU.
// There is no spinning before blocking: on the shared 2-core development
// machine no bounded spin tried (2-60 us) made an eigensolve faster, and the
// longer ones made it slower (bench/README.md).
// Complexity: construction starts n - 1 threads; a job costs a few mutex
// rounds and one wake-up per worker (and one of the caller if it waits),
// plus fn.
// Thread safety: a pool serves one job at a time. A run or for_each issued
// while the pool is busy (from one of its own jobs, i.e. nested use, or from
// another thread) does not wait: it runs all its members in the calling
// thread, one after the other, with the same (t, n) and the same results.
// Jobs must therefore not wait for each other (no barriers inside fn).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace netmod {

inline int resolve_threads(int n_threads) {
    if (n_threads > 0) return n_threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

// Members that for_each(n_tasks, ...) uses on a pool built with n_threads.
inline int worker_count(std::int64_t n_tasks, int n_threads) {
    return static_cast<int>(std::max<std::int64_t>(
        1, std::min<std::int64_t>(resolve_threads(n_threads), n_tasks)));
}

class ThreadPool {
public:
    explicit ThreadPool(int n_threads) : n_(resolve_threads(n_threads)) {
        workers_.reserve(static_cast<std::size_t>(n_ - 1));
        try {
            for (int t = 1; t < n_; ++t) workers_.emplace_back([this, t] { loop(t); });
        } catch (...) {
            shut_down();
            throw;
        }
    }
    ~ThreadPool() { shut_down(); }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_; }

    template <class Fn>
    void run(Fn&& fn) {
        using F = std::remove_reference_t<Fn>;
        dispatch([](void* f, int t, int n) { (*static_cast<F*>(f))(t, n); },
                 const_cast<void*>(static_cast<const void*>(std::addressof(fn))));
    }

    template <class Fn>
    void for_each(std::int64_t n_tasks, Fn&& fn, const std::atomic<bool>* stop = nullptr) {
        if (n_tasks <= 0) return;
        const int members = worker_count(n_tasks, n_);
        std::atomic<std::int64_t> next{0};
        std::atomic<bool> failed{false};
        std::exception_ptr error;
        std::mutex error_mutex;
        // Error state is local, not the pool's, so that a for_each run in the
        // calling thread while the pool is busy stays independent of the job
        // that keeps it busy.
        run([&](int w, int) {
            if (w >= members) return;
            for (;;) {
                if (failed.load(std::memory_order_relaxed)) return;
                if (stop && stop->load(std::memory_order_relaxed)) return;
                const std::int64_t i = next.fetch_add(1, std::memory_order_relaxed);
                if (i >= n_tasks) return;
                try {
                    fn(i, w);
                } catch (...) {
                    std::lock_guard<std::mutex> lock(error_mutex);
                    if (!error) error = std::current_exception();
                    failed.store(true, std::memory_order_relaxed);
                }
            }
        });
        if (error) std::rethrow_exception(error);
    }

private:
    using Job = void (*)(void*, int, int);

    void call(int t) noexcept {
        try {
            job_(arg_, t, n_);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
    }

    void dispatch(Job job, void* arg) {
        if (n_ == 1 || busy_.exchange(true, std::memory_order_acquire)) {
            std::exception_ptr error;
            for (int t = 0; t < n_; ++t) {
                try {
                    job(arg, t, n_);
                } catch (...) {
                    if (!error) error = std::current_exception();
                }
            }
            if (error) std::rethrow_exception(error);
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            job_ = job;
            arg_ = arg;
            error_ = nullptr;
            pending_.store(n_ - 1, std::memory_order_relaxed);
            ++generation_;
        }
        wake_.notify_all();
        call(0);
        auto finished = [&] { return pending_.load(std::memory_order_acquire) == 0; };
        if (!finished()) {
            std::unique_lock<std::mutex> lock(mutex_);
            done_.wait(lock, finished);
        }
        std::exception_ptr error = std::move(error_);
        error_ = nullptr;
        busy_.store(false, std::memory_order_release);
        if (error) std::rethrow_exception(error);
    }

    void loop(int t) {
        std::uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return generation_ != seen; });
                if (stop_) return;
                seen = generation_;
            }
            // job_ and arg_ were set under the mutex just taken, and stay
            // until the caller has seen pending_ reach 0.
            call(t);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                // Under the mutex: the caller either has not yet checked
                // pending_ (and will see 0) or is already waiting.
                std::lock_guard<std::mutex> lock(mutex_);
                done_.notify_one();
            }
        }
    }

    void shut_down() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
            ++generation_;
        }
        wake_.notify_all();
        for (auto& th : workers_) th.join();
        workers_.clear();
    }

    int n_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;  // workers: a new generation (job or stop)
    std::condition_variable done_;  // caller: pending_ reached 0
    std::uint64_t generation_ = 0;  // jobs issued, under mutex_
    bool stop_ = false;             // under mutex_
    Job job_ = nullptr;             // the current job, set under mutex_
    void* arg_ = nullptr;
    std::exception_ptr error_;      // its first exception, under mutex_
    std::atomic<int> pending_{0};   // workers still on the current job
    std::atomic<bool> busy_{false}; // a job is in progress
};

}  // namespace netmod
