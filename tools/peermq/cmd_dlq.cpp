// peermq dlq list|show|replay|purge: a node's dead letters, through its control endpoint while it
// runs, or straight from its journal file while it is stopped.
#include <filesystem>
#include <memory>

#include "commands.hpp"
#include "common.hpp"

namespace peermq::cli {
namespace {

// The dead letters of one node, wherever they are reached.
class DeadLetterStore {
public:
    virtual ~DeadLetterStore() = default;
    virtual Result<std::vector<DeadLetter>> list(const DeadLetterFilter& filter) = 0;
    virtual Result<DeadLetter> get(const MessageId& id) = 0;
    virtual Result<std::size_t> purge(const DeadLetterFilter& filter) = 0;
    virtual Result<MessageId> replay(const MessageId& id, const std::string& queue) = 0;
    // True for a running node (a replay is sent at once), false for a journal file.
    virtual bool running() const = 0;
};

class JournalStore final : public DeadLetterStore {
public:
    explicit JournalStore(DeadLetterJournal journal) : journal_(std::move(journal)) {}
    Result<std::vector<DeadLetter>> list(const DeadLetterFilter& filter) override {
        return journal_.list(filter);
    }
    Result<DeadLetter> get(const MessageId& id) override { return journal_.get(id); }
    Result<std::size_t> purge(const DeadLetterFilter& filter) override {
        return journal_.purge(filter);
    }
    Result<MessageId> replay(const MessageId& id, const std::string& queue) override {
        return journal_.replay(id, queue);
    }
    bool running() const override { return false; }

private:
    DeadLetterJournal journal_;
};

class ControlStore final : public DeadLetterStore {
public:
    ControlStore(ControlClient client, std::string hint)
        : client_(std::move(client)), hint_(std::move(hint)) {}
    Result<std::vector<DeadLetter>> list(const DeadLetterFilter& filter) override {
        return explained(client_.dead_letter_list(filter));
    }
    Result<DeadLetter> get(const MessageId& id) override {
        return explained(client_.dead_letter_get(id));
    }
    Result<std::size_t> purge(const DeadLetterFilter& filter) override {
        return explained(client_.dead_letter_purge(filter));
    }
    Result<MessageId> replay(const MessageId& id, const std::string& queue) override {
        return explained(client_.dead_letter_replay(id, queue));
    }
    bool running() const override { return true; }

private:
    template <typename T>
    Result<T> explained(Result<T> result) const {
        if (result.ok() || result.status().code() != ErrorCode::unavailable) return result;
        return Status(ErrorCode::unavailable, result.status().message() + hint_);
    }

    ControlClient client_;
    std::string hint_;
};

std::unique_ptr<DeadLetterStore> open_store(const NodeTarget& target) {
    check_target(target);
    if (!target.control.empty() || data_dir_in_use(target.data_dir))
        return std::make_unique<ControlStore>(connect_control(target), control_hint(target));
    const std::string file = (std::filesystem::path(target.data_dir) / "peermq.db").string();
    std::error_code error;
    if (!std::filesystem::exists(file, error))
        throw CliError("no journal in " + target.data_dir + ": " + file + " does not exist");
    auto journal = DeadLetterJournal::open(target.data_dir);
    if (!journal) throw CliError(journal.status().message());
    return std::make_unique<JournalStore>(std::move(journal).value());
}

template <typename T>
T value_or_throw(Result<T> result) {
    if (!result) throw CliError(result.status().message());
    return std::move(result).value();
}

MessageId parse_id(const std::string& text) {
    auto id = Uuid::parse(text);
    if (!id) throw CliError("'" + text + "' is not a message id", 2);
    return *id;
}

// The selection options shared by list, replay and purge.
struct Selection {
    std::string queue;
    std::string reason;
    std::string since;
    std::string until;
    std::size_t limit = 0;

    bool any() const {
        return !queue.empty() || !reason.empty() || !since.empty() || !until.empty();
    }

    DeadLetterFilter filter() const {
        DeadLetterFilter filter;
        const std::int64_t now = now_ms();
        if (!queue.empty()) filter.queue = queue;
        if (!reason.empty()) filter.reason = reason;
        if (!since.empty()) filter.since_ms = parse_time(since, now);
        if (!until.empty()) filter.until_ms = parse_time(until, now);
        filter.limit = limit;
        return filter;
    }
};

// Every reason a dead letter can have (`corrupt`: one its journal could not read back): any
// other --reason would select nothing, silently.
const std::vector<std::string> kDeadLetterReasons = {"max_attempts", "expired",        "rejected",
                                                     "no_consumer",  "dropped_oldest", "corrupt"};

void add_selection_options(CLI::App& command, Selection& selection, bool with_limit) {
    command.add_option("--queue", selection.queue, "Only dead letters of this queue");
    command
        .add_option("--reason", selection.reason,
                    "Only this reason: max_attempts, expired, rejected, no_consumer, "
                    "dropped_oldest or corrupt")
        ->check(CLI::IsMember(kDeadLetterReasons))
        ->type_name("REASON");
    command
        .add_option("--since", selection.since,
                    "Only those that last failed at or after TIME (ISO-8601, or a duration ago "
                    "such as 10m)")
        ->check(time_validator())
        ->type_name("TIME");
    command.add_option("--until", selection.until, "Only those that last failed before TIME")
        ->check(time_validator())
        ->type_name("TIME");
    if (with_limit) {
        command.add_option("--limit", selection.limit, "At most N (0 = all)")
            ->check(count_validator());
    }
}

Json letter_json(const DeadLetter& letter) {
    DecodedPayload payload = decode_payload(letter.payload);
    return Json{
        {"id", letter.id.to_string()},
        {"queue", letter.queue},
        {"reason", letter.reason},
        {"attempts", letter.attempts},
        {"last_error", letter.last_error},
        {"created", format_time(letter.created_ms)},
        {"first_failure", format_time(letter.first_failure_ms)},
        {"last_failure", format_time(letter.last_failure_ms)},
        {"created_ms", letter.created_ms},
        {"first_failure_ms", letter.first_failure_ms},
        {"last_failure_ms", letter.last_failure_ms},
        {"headers", to_json(letter.headers)},
        {"payload", std::move(payload.value)},
        {"payload_encoding", std::string(to_string(payload.kind))},
        {"payload_bytes", letter.payload.size()},
    };
}

// --- list -------------------------------------------------------------------------------------

struct ListOptions {
    NodeTarget target;
    Selection selection;
    bool json = false;
};

int run_list(const ListOptions& options) {
    auto store = open_store(options.target);
    const auto letters = value_or_throw(store->list(options.selection.filter()));
    if (options.json) {
        Json out = Json::array();
        for (const auto& letter : letters) out.push_back(letter_json(letter));
        print_text(dump(out) + "\n");
        return 0;
    }
    Table table({"ID", "QUEUE", "REASON", "ATTEMPTS", "LAST FAILURE", "LAST ERROR", "PAYLOAD"});
    for (const auto& letter : letters) {
        table.add({letter.id.to_string(), letter.queue, letter.reason,
                   std::to_string(letter.attempts), format_time(letter.last_failure_ms),
                   truncate(letter.last_error.empty() ? "-" : letter.last_error, 40),
                   truncate(payload_line(letter.payload), 40)});
    }
    print_text(table.render());
    return 0;
}

// --- show -------------------------------------------------------------------------------------

struct ShowOptions {
    NodeTarget target;
    std::string id;
    bool json = false;
};

int run_show(const ShowOptions& options) {
    const MessageId id = parse_id(options.id);
    auto store = open_store(options.target);
    auto letter = store->get(id);
    if (!letter) {
        if (letter.status().code() == ErrorCode::not_found)
            throw CliError("no dead letter " + options.id);
        throw CliError(letter.status().message());
    }
    if (options.json) {
        print_text(dump(letter_json(*letter)) + "\n");
        return 0;
    }
    const DecodedPayload payload = decode_payload(letter->payload);
    std::string out;
    auto field = [&](const std::string& name, const std::string& value) {
        out +=
            name + ":" + std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') + value + "\n";
    };
    field("id", letter->id.to_string());
    field("queue", letter->queue);
    field("reason", letter->reason);
    field("attempts", std::to_string(letter->attempts));
    field("last error", letter->last_error.empty() ? "-" : letter->last_error);
    field("created", format_time(letter->created_ms));
    field("first failure", format_time(letter->first_failure_ms));
    field("last failure", format_time(letter->last_failure_ms));
    if (letter->headers.empty()) {
        field("headers", "-");
    } else {
        field("headers", "");
        for (const auto& [key, value] : letter->headers) out += "  " + key + "=" + value + "\n";
    }
    const std::size_t size = letter->payload.size();
    field("payload", std::string(to_string(payload.kind)) + ", " + std::to_string(size) +
                         (size == 1 ? " byte" : " bytes"));
    const std::string body = payload.kind == PayloadKind::msgpack
                                 ? dump(payload.value, 2)
                                 : payload.value.get<std::string>();
    out += body + "\n";
    print_text(out);
    return 0;
}

// --- replay -----------------------------------------------------------------------------------

struct ReplayOptions {
    NodeTarget target;
    std::vector<std::string> ids;
    bool all = false;
    Selection selection;
    std::string to;
};

// The dead letter IDs given, parsed, once checked that either IDs or --all select.
std::vector<MessageId> ids_or_all(const std::vector<std::string>& ids, bool all,
                                  const Selection& selection) {
    if (ids.empty() == !all) throw CliError("give dead letter IDs or --all (not both)", 2);
    if (!ids.empty() && selection.any())
        throw CliError("--queue, --reason, --since and --until select with --all, not with IDs", 2);
    std::vector<MessageId> parsed;
    for (const auto& text : ids) parsed.push_back(parse_id(text));
    return parsed;
}

int run_replay(const ReplayOptions& options) {
    std::vector<MessageId> ids = ids_or_all(options.ids, options.all, options.selection);
    auto store = open_store(options.target);
    if (options.all) {
        for (const auto& letter : value_or_throw(store->list(options.selection.filter())))
            ids.push_back(letter.id);
        if (ids.empty()) {
            note("no dead letters match");
            return 0;
        }
    }
    std::size_t replayed = 0, failed = 0;
    for (const auto& id : ids) {
        auto letter = store->get(id);
        auto new_id = letter ? store->replay(id, options.to) : Result<MessageId>(letter.status());
        if (!new_id) {
            ++failed;
            note("cannot replay " + id.to_string() + ": " + new_id.status().message(), true);
            continue;
        }
        ++replayed;
        const std::string queue = options.to.empty() ? letter->queue : options.to;
        print_text("replayed " + id.to_string() + " as " + new_id->to_string() + " on '" + queue +
                   "'\n");
    }
    if (replayed > 0 && !store->running()) {
        note(std::to_string(replayed) + " message" + (replayed == 1 ? "" : "s") +
             " back in the outbox of " + options.target.data_dir +
             ": the node sends them when it next starts");
    }
    return failed == 0 ? 0 : 1;
}

// --- purge ------------------------------------------------------------------------------------

struct PurgeOptions {
    NodeTarget target;
    std::vector<std::string> ids;
    bool all = false;
    Selection selection;
};

Status purge_one(DeadLetterStore& store, const MessageId& id) {
    auto purged = store.purge(DeadLetterFilter{.id = id});
    if (!purged) return purged.status();
    if (purged.value() == 0)
        return Status(ErrorCode::not_found, "no dead letter " + id.to_string());
    return {};
}

int run_purge(const PurgeOptions& options) {
    std::vector<MessageId> ids = ids_or_all(options.ids, options.all, options.selection);
    auto store = open_store(options.target);
    if (options.all) {
        const std::size_t purged = value_or_throw(store->purge(options.selection.filter()));
        print_text("purged " + std::to_string(purged) + " dead letter" + (purged == 1 ? "" : "s") +
                   "\n");
        return 0;
    }
    std::size_t purged = 0, failed = 0;
    for (const auto& id : ids) {
        if (Status status = purge_one(*store, id); !status.ok()) {
            ++failed;
            note("cannot purge " + id.to_string() + ": " + status.message(), true);
            continue;
        }
        ++purged;
        print_text("purged " + id.to_string() + "\n");
    }
    return failed == 0 ? 0 : 1;
}

}  // namespace

void add_dlq_command(CLI::App& app, Runner& selected) {
    CLI::App* dlq = app.add_subcommand("dlq", "List, show, replay and purge a node's dead letters");
    dlq->require_subcommand(1);
    {
        auto [command, options] =
            add_command(*dlq, selected, "list", "List dead letters", run_list);
        add_target_options(*command, options->target);
        add_selection_options(*command, options->selection, true);
        command->add_flag("--json", options->json, "Print a JSON array");
    }
    {
        auto [command, options] =
            add_command(*dlq, selected, "show", "Show one dead letter in full", run_show);
        command->add_option("id", options->id, "Dead letter (message) id")->required();
        add_target_options(*command, options->target);
        command->add_flag("--json", options->json, "Print a JSON object");
    }
    {
        auto [command, options] = add_command(
            *dlq, selected, "replay",
            "Send dead letters again (a stopped node sends them when it next starts)", run_replay);
        command->add_option("ids", options->ids, "Dead letter ids");
        command->add_flag("--all", options->all, "Every dead letter the selection options match");
        add_target_options(*command, options->target);
        add_selection_options(*command, options->selection, false);
        command->add_option("--to", options->to, "Send to this queue instead of their own");
    }
    {
        auto [command, options] =
            add_command(*dlq, selected, "purge", "Delete dead letters", run_purge);
        command->add_option("ids", options->ids, "Dead letter ids");
        command->add_flag("--all", options->all, "Every dead letter the selection options match");
        add_target_options(*command, options->target);
        add_selection_options(*command, options->selection, false);
    }
}

}  // namespace peermq::cli
