// MetricsServer on cpp-httplib, and the parsing of "[address:]port" / PEERMQ_METRICS.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include <httplib.h>

#include "metrics_internal.hpp"
#include "peermq/log.hpp"
#include "peermq/metrics.hpp"
#include "util/mutex.hpp"

namespace peermq {
namespace {

constexpr std::string_view kDefaultAddress = "127.0.0.1";
// Connections served at once, each on a thread of its own (ConnectionThreads). Connections are
// not kept alive, so that stop() never waits for an idle scraper to go away.
constexpr std::size_t kMaxConnections = 32;

// httplib's task queue, one thread per connection up to kMaxConnections. httplib's own pool
// gives each connection a worker until its request is read, up to the read timeout per byte: a
// few clients that connect and send nothing (or a byte at a time) held both workers of a pool of
// two, and a scrape waited behind them (measured: 4 such clients delayed one to 27 s). Here a
// slow client holds only its own thread; past the cap, the accept loop waits for a connection
// to end (the kernel's backlog keeps the rest).
class ConnectionThreads final : public httplib::TaskQueue {
public:
    void enqueue(std::function<void()> serve) override {
        detail::MutexLock lock(mutex_);
        changed_.wait(lock,
                      [this]() PEERMQ_REQUIRES(mutex_) { return running_ < kMaxConnections; });
        ++running_;
        // Detached: shutdown() waits for the count, and a thread touches nothing of this object
        // after it has counted itself out.
        std::thread([this, serve = std::move(serve)] {
            try {
                serve();
            } catch (...) {
                // httplib answers what a handler throws; nothing else is expected here.
            }
            detail::MutexLock done(mutex_);
            --running_;
            changed_.notify_all();
        }).detach();
    }

    void shutdown() override {
        detail::MutexLock lock(mutex_);
        changed_.wait(lock, [this]() PEERMQ_REQUIRES(mutex_) { return running_ == 0; });
    }

private:
    detail::Mutex mutex_;
    detail::CondVar changed_;
    std::size_t running_ PEERMQ_GUARDED_BY(mutex_) = 0;
};

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

Result<std::uint16_t> parse_port(std::string_view text, std::string_view whole) {
    if (text.empty() || text.size() > 5) {
        return make_error(ErrorCode::invalid_argument,
                          "metrics: '" + std::string(whole) + "' has no valid port (0-65535)");
    }
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return make_error(ErrorCode::invalid_argument,
                              "metrics: '" + std::string(whole) + "' has no valid port (0-65535)");
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) {
        return make_error(ErrorCode::invalid_argument,
                          "metrics: port " + std::string(text) + " is out of range (0-65535)");
    }
    return static_cast<std::uint16_t>(value);
}

std::string host_port(const std::string& address, std::uint16_t port) {
    const bool ipv6 = address.find(':') != std::string::npos;
    return (ipv6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// httplib routes by regular expression: match the configured path literally.
std::string regex_literal(std::string_view path) {
    std::string out;
    for (const char c : path) {
        if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out += '\\';
        out += c;
    }
    return out;
}

Status resolve(const std::string& address) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(address.c_str(), nullptr, &hints, &found);
    if (rc != 0) {
        return make_error(
            ErrorCode::invalid_argument,
            "metrics: address '" + address + "' does not resolve: " + ::gai_strerror(rc));
    }
    ::freeaddrinfo(found);
    return {};
}

// httplib says only that binding failed; binding a probe socket the same way tells why.
Status bind_failure(const std::string& address, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string where = host_port(address, port);
    if (const int rc = ::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found);
        rc != 0) {
        return make_error(
            ErrorCode::invalid_argument,
            "metrics: address '" + address + "' does not resolve: " + ::gai_strerror(rc));
    }
    int error = 0;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            error = errno;
            continue;
        }
        const int yes = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        const bool bound = ::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        error = bound ? 0 : errno;
        ::close(fd);
        if (!bound) break;
    }
    ::freeaddrinfo(found);
    switch (error) {
        case EADDRINUSE:
            return make_error(ErrorCode::address_in_use, "metrics: " + where + " is in use");
        case EADDRNOTAVAIL:
            return make_error(ErrorCode::invalid_argument,
                              "metrics: " + address + " is not an address of this host");
        case EACCES:
            return make_error(ErrorCode::io_error, "metrics: no permission to listen on " + where);
        case 0: return make_error(ErrorCode::io_error, "metrics: could not listen on " + where);
        default:
            return make_error(ErrorCode::io_error,
                              "metrics: cannot listen on " + where + ": " + std::strerror(error));
    }
}

}  // namespace

struct MetricsServer::State {
    httplib::Server server;
    std::thread thread;
    std::string address;
    std::uint16_t port = 0;
    std::string path;
    std::function<NodeStats()> source;
    std::atomic<bool> done{false};
    detail::Mutex stop_mutex;
    bool stopped PEERMQ_GUARDED_BY(stop_mutex) = false;
    std::atomic<bool> stop_requested{false};  // read by the listening thread: stop_mutex is held
                                              // while stop() joins it
    std::atomic<std::uint64_t> failed_scrapes{0};
    mutable detail::Mutex failure_mutex;
    // Why the listening thread ended before stop(); ok otherwise.
    Status failure PEERMQ_GUARDED_BY(failure_mutex);

    // Counts and logs a scrape that failed; returns the text for the 500 response.
    std::string scrape_failed(std::exception_ptr error) noexcept {
        failed_scrapes.fetch_add(1, std::memory_order_relaxed);
        try {
            const std::string text = exception_text(error);
            PEERMQ_LOG(process_logger(), LogLevel::error, "metrics", "a scrape failed",
                       {"url", "http://" + host_port(address, port) + path}, {"error", text});
            return text;
        } catch (...) {
            return {};
        }
    }

    void listen() noexcept {
        Status ended;
        try {
            if (!server.listen_after_bind() && !stopping()) {
                ended = make_error(ErrorCode::io_error, "metrics: the server on " +
                                                            host_port(address, port) +
                                                            " stopped accepting connections");
            }
        } catch (...) {
            try {
                ended = make_error(ErrorCode::internal,
                                   "metrics: the server on " + host_port(address, port) +
                                       " stopped: " + exception_text(std::current_exception()));
            } catch (...) {
                ended = Status(ErrorCode::internal, {});
            }
        }
        if (!ended.ok()) {
            try {
                PEERMQ_LOG(process_logger(), LogLevel::error, "metrics", "the metrics server died",
                           {"error", ended.message()});
                detail::MutexLock lock(failure_mutex);
                failure = std::move(ended);
            } catch (...) {
            }
        }
        done = true;
    }

    bool stopping() const noexcept { return stop_requested.load(); }

    // httplib ignores stop() until its accept loop runs, so wait for that loop (it starts at once:
    // the socket already listens) before stopping it.
    void stop() {
        detail::MutexLock lock(stop_mutex);
        if (stopped) return;
        stopped = true;
        stop_requested = true;
        while (!done.load()) {
            if (server.is_running()) {
                server.stop();
                break;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        if (thread.joinable()) thread.join();
    }
};

Result<MetricsOptions> parse_metrics_listen(std::string_view text) {
    const std::string_view whole = trim(text);
    if (whole.empty()) {
        return make_error(ErrorCode::invalid_argument,
                          "metrics: expected [address:]port, got an empty string");
    }
    MetricsOptions options;
    std::string_view port = whole;
    if (whole.front() == '[') {
        const auto close = whole.find(']');
        if (close == std::string_view::npos || close + 1 >= whole.size() ||
            whole[close + 1] != ':') {
            return make_error(
                ErrorCode::invalid_argument,
                "metrics: '" + std::string(whole) + "' is not [address:]port (IPv6 as [::1]:9464)");
        }
        options.address = std::string(whole.substr(1, close - 1));
        port = whole.substr(close + 2);
    } else if (const auto colon = whole.rfind(':'); colon != std::string_view::npos) {
        if (whole.find(':') != colon) {
            return make_error(ErrorCode::invalid_argument,
                              "metrics: '" + std::string(whole) +
                                  "': put an IPv6 address in brackets, as [::1]:9464");
        }
        if (colon > 0) options.address = std::string(whole.substr(0, colon));
        port = whole.substr(colon + 1);
    }
    if (options.address.empty()) options.address = std::string(kDefaultAddress);
    auto number = parse_port(port, whole);
    if (!number) return number.status();
    options.port = *number;
    return options;
}

Result<std::optional<MetricsOptions>> metrics_options_from_env() {
    const char* value = std::getenv("PEERMQ_METRICS");
    if (value == nullptr || trim(value).empty()) return std::optional<MetricsOptions>{};
    auto options = parse_metrics_listen(value);
    if (!options) {
        return make_error(ErrorCode::invalid_argument,
                          "PEERMQ_METRICS: " + options.status().message());
    }
    return std::optional<MetricsOptions>(std::move(options).value());
}

Result<MetricsServer> MetricsServer::start(Node& node, MetricsOptions options) {
    return start([&node] { return node.stats(); }, std::move(options));
}

Result<MetricsServer> MetricsServer::start(std::function<NodeStats()> source,
                                           MetricsOptions options) {
    if (!source) return make_error(ErrorCode::invalid_argument, "metrics: no stats source");
    if (options.address.empty()) options.address = std::string(kDefaultAddress);
    if (options.path.empty() || options.path.front() != '/') {
        return make_error(ErrorCode::invalid_argument,
                          "metrics: path '" + options.path + "' must start with '/'");
    }
    for (const char c : options.path) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F || c == '?' || c == '#') {
            return make_error(ErrorCode::invalid_argument,
                              "metrics: path '" + options.path + "' is not a plain URL path");
        }
    }
    if (Status resolved = resolve(options.address); !resolved.ok()) return resolved;

    auto state = std::make_unique<State>();
    state->address = options.address;
    state->path = options.path;
    state->source = std::move(source);
    State* s = state.get();

    httplib::Server& server = state->server;
    // httplib's default sets SO_REUSEPORT, which would let a second server share the port.
    server.set_socket_options([](int fd) {
        const int yes = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.new_task_queue = [] { return new ConnectionThreads(); };
    server.set_keep_alive_max_count(1);
    server.set_read_timeout(5, 0);
    server.set_write_timeout(5, 0);
    server.Get(
        regex_literal(options.path), [s](const httplib::Request& req, httplib::Response& res) {
            const MetricsFormat format =
                detail::negotiate_metrics_format(req.get_header_value("Accept"));
            try {
                const auto process = read_process_stats();
                res.set_content(render_metrics(s->source(), format, process ? &*process : nullptr),
                                std::string(metrics_content_type(format)));
            } catch (...) {
                res.status = 500;
                res.set_content("metrics: reading the stats failed: " +
                                    s->scrape_failed(std::current_exception()) + "\n",
                                "text/plain; charset=utf-8");
            }
        });
    // Anything else that escapes a request (httplib answers it with a 500).
    server.set_exception_handler([s](const httplib::Request&, httplib::Response& res,
                                     std::exception_ptr error) {
        res.status = 500;
        res.set_content("metrics: " + s->scrape_failed(error) + "\n", "text/plain; charset=utf-8");
    });

    if (options.port == 0) {
        const int port = server.bind_to_any_port(options.address);
        if (port <= 0) return bind_failure(options.address, 0);
        state->port = static_cast<std::uint16_t>(port);
    } else {
        if (!server.bind_to_port(options.address, options.port)) {
            return bind_failure(options.address, options.port);
        }
        state->port = options.port;
    }
    state->thread = std::thread([s] { s->listen(); });
    return MetricsServer(std::move(state));
}

MetricsServer::MetricsServer(std::unique_ptr<State> state) : state_(std::move(state)) {}
MetricsServer::MetricsServer(MetricsServer&&) noexcept = default;

MetricsServer& MetricsServer::operator=(MetricsServer&& other) noexcept {
    if (this != &other) {
        stop();
        state_ = std::move(other.state_);
    }
    return *this;
}

MetricsServer::~MetricsServer() { stop(); }

std::uint16_t MetricsServer::port() const noexcept { return state_ ? state_->port : 0; }

const std::string& MetricsServer::address() const noexcept {
    static const std::string kNone;
    return state_ ? state_->address : kNone;
}

std::string MetricsServer::url() const {
    if (!state_) return {};
    return "http://" + host_port(state_->address, state_->port) + state_->path;
}

void MetricsServer::stop() {
    if (state_) state_->stop();
}

std::uint64_t MetricsServer::failed_scrapes() const noexcept {
    return state_ ? state_->failed_scrapes.load(std::memory_order_relaxed) : 0;
}

Status MetricsServer::status() const {
    if (!state_) return make_error(ErrorCode::closed, "metrics: no server (moved from)");
    detail::MutexLock lock(state_->failure_mutex);
    return state_->failure;
}

}  // namespace peermq
