#pragma once
// An engine's own threads: every options struct has `executor`; when it names one, the call's
// parallel work runs on it instead of OpenMP, with the same work items and the same bits.
// thread_pool is a ready executor on std::thread (also the way to run seqmix multi-threaded
// in a build without OpenMP).
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

// Outside the ABI namespace (core/abi.hpp): the same types in every translation unit, as the
// options structs that name them; nothing here depends on the instruction set.
namespace seqmix {

// A task of a team: task(i) for team member i. A non-owning reference to a callable.
class team_task {
public:
    template <class F>  // implicit on purpose: a lambda is a task
    // cppcheck-suppress noExplicitConstructor
    team_task(const F& f) : object_(&f), call_([](const void* o, int i) { (*static_cast<const F*>(o))(i); }) {}
    void operator()(int member) const { call_(object_, member); }

private:
    const void* object_;
    void (*call_)(const void*, int);
};

// The hook: implement it over your thread pool and pass it in the options (`opt.executor`).
class executor {
public:
    virtual ~executor() = default;
    // Threads that can run at once (>= 1): the team size seqmix plans for when num_threads is 0,
    // and the cap on any num_threads.
    virtual int concurrency() const = 0;
    // Runs task(i) for every i in [0, team) with all of them running at once, each on its own
    // thread (the caller may run one), and returns when every one has returned. team <=
    // concurrency(). The members of a team wait for each other at barriers, so a pool that
    // queued one member behind another would deadlock. Tasks never throw; seqmix never calls
    // run from inside a task.
    virtual void run(int team, const team_task& task) = 0;
};

// A fixed pool of concurrency() - 1 threads plus the calling one. Calls from several user
// threads take turns (one team at a time). Not re-entrant: a task must not call run on the
// pool it runs on (seqmix never does: inside a team its calls run on one thread).
class thread_pool final : public executor {
public:
    explicit thread_pool(int threads) : size_(threads < 1 ? 1 : threads) {
        for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { work(i); });
    }
    ~thread_pool() override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    int concurrency() const override { return size_; }

    void run(int team, const team_task& task) override {
        if (team > size_) {  // members without a thread would never run: a caller's bug
            (void)std::fputs("seqmix::thread_pool::run: a team larger than the pool\n", stderr);
            std::abort();
        }
        if (team <= 1) {
            if (team == 1) task(0);
            return;
        }
        std::lock_guard<std::mutex> one_team(run_mutex_);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            task_ = &task;
            team_ = team;
            running_ = team - 1;
            ++generation_;
        }
        wake_.notify_all();
        // The workers use task until they are done: wait for them even if member 0 throws.
        struct wait_for_workers {
            thread_pool& pool;
            explicit wait_for_workers(thread_pool& p) : pool(p) {}
            ~wait_for_workers() {
                std::unique_lock<std::mutex> lock(pool.mutex_);
                pool.done_.wait(lock, [&] { return pool.running_ == 0; });
                pool.task_ = nullptr;
            }
            wait_for_workers(const wait_for_workers&) = delete;
            wait_for_workers& operator=(const wait_for_workers&) = delete;
        } waiting(*this);
        task(0);
    }

private:
    void work(int member) {
        std::uint64_t seen = 0;
        for (;;) {
            const team_task* task = nullptr;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stopping_ || (generation_ != seen && member < team_); });
                if (stopping_) return;
                seen = generation_;
                task = task_;
            }
            (*task)(member);
            std::lock_guard<std::mutex> lock(mutex_);
            if (--running_ == 0) done_.notify_one();
        }
    }

    int size_;
    std::vector<std::thread> workers_;
    std::mutex run_mutex_, mutex_;
    std::condition_variable wake_, done_;
    const team_task* task_ = nullptr;
    int team_ = 0, running_ = 0;
    std::uint64_t generation_ = 0;
    bool stopping_ = false;
};

}  // namespace seqmix
