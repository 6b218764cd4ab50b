// The authorized_keys file (core/src/security/authorized_keys.hpp): its lines, comments and
// problems, what each permission allows, its bounds, and reading and editing real files.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "peermq/keys.hpp"
#include "security/authorized_keys.hpp"
#include "support/temp_dir.hpp"

namespace peermq::detail {
namespace {

namespace fs = std::filesystem;
using peermq::testing::TempDir;

std::string new_key() { return generate_key_pair().value().public_key; }

CurveKey raw(const std::string& z85) { return decode_key(z85).value(); }

void write_file(const std::string& path, const std::string& text, mode_t mode = 0600) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
}

// The one problem `text` has; its line and reason.
AuthorizedKeysProblem only_problem(const std::string& text) {
    const AuthorizedKeys parsed = parse_authorized_keys(text);
    EXPECT_EQ(parsed.problems.size(), 1u) << text;
    return parsed.problems.empty() ? AuthorizedKeysProblem{} : parsed.problems.front();
}

AuthorizedKey entry_of(const std::string& key, const std::string& name) {
    AuthorizedKey entry;
    entry.key = raw(key);
    entry.name = name;
    return entry;
}

// --- Lines ----------------------------------------------------------------------------------

TEST(AuthorizedKeys, ReadsAKeyItsNameAndItsPermissions) {
    const std::string key = new_key();
    const AuthorizedKeys parsed = parse_authorized_keys(
        key + " billing send=orders,refunds consume=invoices publish=billing. subscribe=orders.\n");
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_TRUE(parsed.problems.empty());
    const AuthorizedKey& entry = parsed.keys[0];
    EXPECT_EQ(entry.key, raw(key));
    EXPECT_EQ(entry.name, "billing");
    EXPECT_EQ(entry.line, 1u);
    EXPECT_EQ(entry.permissions.send, (std::vector<std::string>{"orders", "refunds"}));
    EXPECT_EQ(entry.permissions.consume, (std::vector<std::string>{"invoices"}));
    EXPECT_EQ(entry.permissions.publish, (std::vector<std::string>{"billing."}));
    EXPECT_EQ(entry.permissions.subscribe, (std::vector<std::string>{"orders."}));
    EXPECT_FALSE(entry.permissions.unrestricted());
    EXPECT_EQ(parsed.find(raw(key)), &entry);
    EXPECT_EQ(parsed.find_name("billing"), &entry);
    EXPECT_EQ(parsed.find(raw(new_key())), nullptr);
    EXPECT_EQ(parsed.find_name("other"), nullptr);
}

TEST(AuthorizedKeys, FieldsMayComeInAnyOrderBetweenSpacesAndTabs) {
    const std::string key = new_key();
    const AuthorizedKeys parsed =
        parse_authorized_keys("  " + key + "\tbilling  subscribe=a\t send=q  ");
    ASSERT_EQ(parsed.keys.size(), 1u) << parsed.problems.front().reason;
    EXPECT_EQ(parsed.keys[0].permissions.send, (std::vector<std::string>{"q"}));
    EXPECT_EQ(parsed.keys[0].permissions.subscribe, (std::vector<std::string>{"a"}));
    EXPECT_FALSE(parsed.keys[0].permissions.consume);
}

TEST(AuthorizedKeys, BlankLinesAndHashCommentsAreSkippedButCounted) {
    const std::string key = new_key();
    const AuthorizedKeys parsed = parse_authorized_keys(
        "# the keys of the shop\n"
        "\n"
        "   \t\n"
        "#\n"
        "#\tanother comment\n"
        "   # an indented one\n" +
        key + " billing\n");
    EXPECT_TRUE(parsed.problems.empty());
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_EQ(parsed.keys[0].line, 7u);
}

TEST(AuthorizedKeys, AHashJoinedToAWordIsADamagedLineNotAComment) {
    const std::string key = new_key();
    // No key's text begins with '#' (Z85 of 0xffffffff is "%nSc0"): such a line is reported.
    const auto damaged = only_problem("#" + key.substr(1) + " billing\n");
    EXPECT_EQ(damaged.line, 1u);
    EXPECT_EQ(damaged.reason, "not a Z85 key (40 characters)");
    const auto disabled = only_problem("# ok\n#" + key + " billing\n");
    EXPECT_EQ(disabled.line, 2u);
}

TEST(AuthorizedKeys, AKeyHoldingAHashIsRead) {
    std::string key;
    for (int i = 0; i < 1000 && key.find('#') == std::string::npos; ++i) key = new_key();
    ASSERT_NE(key.find('#'), std::string::npos) << "no key with a '#' in 1000";
    const AuthorizedKeys parsed = parse_authorized_keys(key + " hashed\n");
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_EQ(parsed.keys[0].key, raw(key));
}

TEST(AuthorizedKeys, CrlfLineEndsAreRead) {
    const std::string a = new_key();
    const std::string b = new_key();
    const AuthorizedKeys parsed = parse_authorized_keys(
        "# comment\r\n" + a + " alpha subscribe=x.\r\n\r\n" + b + " beta\r\n");
    EXPECT_TRUE(parsed.problems.empty());
    ASSERT_EQ(parsed.keys.size(), 2u);
    EXPECT_EQ(parsed.keys[0].permissions.subscribe, (std::vector<std::string>{"x."}));
    EXPECT_EQ(parsed.keys[1].name, "beta");
    EXPECT_EQ(parsed.keys[1].line, 4u);
}

TEST(AuthorizedKeys, ALastLineWithoutItsEndIsRead) {
    const AuthorizedKeys parsed = parse_authorized_keys(new_key() + " last");
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_EQ(parsed.keys[0].name, "last");
}

// --- Permissions ----------------------------------------------------------------------------

Permissions permissions_of(const std::string& fields) {
    const AuthorizedKeys parsed = parse_authorized_keys(new_key() + " node " + fields);
    EXPECT_EQ(parsed.keys.size(), 1u) << fields;
    return parsed.keys.empty() ? Permissions{} : parsed.keys[0].permissions;
}

TEST(AuthorizedKeys, AnAbsentPermissionAllowsEverything) {
    const Permissions all = permissions_of("");
    EXPECT_TRUE(all.unrestricted());
    EXPECT_TRUE(all.may_send("orders"));
    EXPECT_TRUE(all.may_consume("orders"));
    EXPECT_TRUE(all.may_publish("any.topic"));
    EXPECT_TRUE(all.may_subscribe(""));

    const Permissions send_only = permissions_of("send=orders");
    EXPECT_FALSE(send_only.unrestricted());
    EXPECT_TRUE(send_only.may_consume("anything"));
    EXPECT_TRUE(send_only.may_publish("anything"));
    EXPECT_TRUE(send_only.may_subscribe(""));
}

TEST(AuthorizedKeys, SendAndConsumeAllowExactlyTheQueuesListed) {
    const Permissions p = permissions_of("send=orders,refunds consume=invoices");
    EXPECT_TRUE(p.may_send("orders"));
    EXPECT_TRUE(p.may_send("refunds"));
    EXPECT_FALSE(p.may_send("orders2"));
    EXPECT_FALSE(p.may_send("order"));
    EXPECT_FALSE(p.may_send("invoices"));
    EXPECT_FALSE(p.may_send(""));
    EXPECT_TRUE(p.may_consume("invoices"));
    EXPECT_FALSE(p.may_consume("orders"));
}

TEST(AuthorizedKeys, AStarAllowsEveryQueueAndEveryTopic) {
    const Permissions p = permissions_of("send=* consume=audit,* publish=* subscribe=*");
    EXPECT_TRUE(p.may_send("anything"));
    EXPECT_TRUE(p.may_consume("anything"));
    EXPECT_TRUE(p.may_publish("any.topic"));
    EXPECT_TRUE(p.may_subscribe("any."));
    EXPECT_TRUE(p.may_subscribe(""));  // everything
}

TEST(AuthorizedKeys, AnEmptyListAllowsNothing) {
    const Permissions p = permissions_of("send= consume= publish= subscribe=");
    EXPECT_EQ(p.send, std::vector<std::string>{});
    EXPECT_FALSE(p.unrestricted());
    EXPECT_FALSE(p.may_send("orders"));
    EXPECT_FALSE(p.may_send(""));
    EXPECT_FALSE(p.may_consume("orders"));
    EXPECT_FALSE(p.may_publish("topic"));
    EXPECT_FALSE(p.may_publish(""));
    EXPECT_FALSE(p.may_subscribe("topic"));
    EXPECT_FALSE(p.may_subscribe(""));
}

TEST(AuthorizedKeys, PublishAllowsTopicsThatBeginWithAListedPrefix) {
    const Permissions p = permissions_of("publish=sensors.,alerts");
    EXPECT_TRUE(p.may_publish("sensors.temp"));
    EXPECT_TRUE(p.may_publish("sensors."));
    EXPECT_TRUE(p.may_publish("alerts"));
    EXPECT_TRUE(p.may_publish("alerts.fire"));
    EXPECT_FALSE(p.may_publish("sensors"));
    EXPECT_FALSE(p.may_publish("sens"));
    EXPECT_FALSE(p.may_publish(""));
    EXPECT_FALSE(p.may_publish("other.sensors.temp"));
}

TEST(AuthorizedKeys, SubscribeAllowsOnlyPrefixesWithinAListedOne) {
    const Permissions p = permissions_of("subscribe=sensors.");
    EXPECT_TRUE(p.may_subscribe("sensors."));
    EXPECT_TRUE(p.may_subscribe("sensors.temp"));
    // Both would receive topics outside "sensors.".
    EXPECT_FALSE(p.may_subscribe(""));
    EXPECT_FALSE(p.may_subscribe("sens"));
    EXPECT_FALSE(p.may_subscribe("alerts."));
}

TEST(AuthorizedKeys, AnEmptyEntryAllowsNothingEvenWhenBuiltInCode) {
    Permissions p;
    p.send = std::vector<std::string>{""};
    p.publish = std::vector<std::string>{""};
    p.subscribe = std::vector<std::string>{""};
    EXPECT_FALSE(p.may_send(""));
    EXPECT_FALSE(p.may_publish("topic"));
    EXPECT_FALSE(p.may_subscribe(""));
}

// --- Problems -------------------------------------------------------------------------------

TEST(AuthorizedKeys, EveryProblemIsToldWithItsLineAndItsKeyIsNotAuthorized) {
    const std::string good = new_key();
    const std::string key = new_key();
    struct Case {
        std::string line;
        std::string reason;
    };
    const std::vector<Case> cases = {
        {"not-a-key billing", "not a Z85 key (40 characters)"},
        {key.substr(1) + " billing", "not a Z85 key (40 characters)"},
        {std::string(40, ' ') + "~", "not a Z85 key (40 characters)"},
        {key, "no name after the key"},
        {key + " bil/ling", "name must be 1-48 characters of [A-Za-z0-9._-]"},
        {key + " " + std::string(49, 'n'), "name must be 1-48 characters of [A-Za-z0-9._-]"},
        {key + " billing read=orders",
         "'read' is not a field (send=, consume=, publish=, subscribe=)"},
        {key + " billing orders",
         "'orders' is not a field (send=, consume=, publish=, subscribe=)"},
        {key + " billing send=a send=b", "send= given twice"},
        {key + " billing send=a,,b", "send= entries must be 1-255 bytes without ',' or whitespace"},
        {key + " billing consume=a,",
         "consume= entries must be 1-255 bytes without ',' or whitespace"},
        {key + " billing publish=,a",
         "publish= entries must be 1-255 bytes without ',' or whitespace"},
        {key + " billing subscribe=a\vb",
         "subscribe= entries must be 1-255 bytes without ',' or whitespace"},
        {key + " billing send=" + std::string(256, 'q'),
         "send= entries must be 1-255 bytes without ',' or whitespace"},
        {key + " billing send=q send=q send=q send=q send=q send=q", "send= given twice"},
    };
    for (const Case& c : cases) {
        const AuthorizedKeys parsed =
            parse_authorized_keys("# header\n" + good + " good\n" + c.line + "\n");
        ASSERT_EQ(parsed.problems.size(), 1u) << c.line;
        EXPECT_EQ(parsed.problems[0].line, 3u) << c.line;
        EXPECT_EQ(parsed.problems[0].reason, c.reason) << c.line;
        ASSERT_EQ(parsed.keys.size(), 1u) << c.line;
        EXPECT_EQ(parsed.find(raw(key)), nullptr) << c.line;
    }
}

TEST(AuthorizedKeys, AProblemQuotesNoMoreThanAShortPieceOfTheLine) {
    const auto problem =
        only_problem(new_key() + " billing " + std::string(10000, 'x') + "\x01=y\n");
    EXPECT_LT(problem.reason.size(), 100u) << problem.reason;
}

TEST(AuthorizedKeys, AKeyListedTwiceCountsAtItsFirstLine) {
    const std::string key = new_key();
    const AuthorizedKeys parsed =
        parse_authorized_keys(key + " billing send=orders\n# x\n" + key + " other\n");
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_EQ(parsed.keys[0].name, "billing");
    EXPECT_EQ(parsed.keys[0].permissions.send, (std::vector<std::string>{"orders"}));
    ASSERT_EQ(parsed.problems.size(), 1u);
    EXPECT_EQ(parsed.problems[0].line, 3u);
    EXPECT_EQ(parsed.problems[0].reason, "key already listed on line 1");
    EXPECT_EQ(parsed.find_name("other"), nullptr);
}

TEST(AuthorizedKeys, ANameListedForTwoKeysCountsAtItsFirstLine) {
    const std::string first = new_key();
    const std::string second = new_key();
    const AuthorizedKeys parsed =
        parse_authorized_keys("\n" + first + " billing\n" + second + " billing\n");
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_EQ(parsed.keys[0].key, raw(first));
    ASSERT_EQ(parsed.problems.size(), 1u);
    EXPECT_EQ(parsed.problems[0].line, 3u);
    EXPECT_EQ(parsed.problems[0].reason, "name already listed on line 2");
    EXPECT_EQ(parsed.find(raw(second)), nullptr);
}

TEST(AuthorizedKeys, ADamagedLineClaimsNeitherItsKeyNorItsName) {
    const std::string key = new_key();
    const AuthorizedKeys parsed =
        parse_authorized_keys(key + " billing sned=orders\n" + key + " billing send=orders\n");
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_EQ(parsed.keys[0].line, 2u);
    ASSERT_EQ(parsed.problems.size(), 1u);
    EXPECT_EQ(parsed.problems[0].line, 1u);
}

TEST(AuthorizedKeys, NamesOf48AndListsOf256EntriesOf255BytesAreAtTheBound) {
    std::string list;
    for (int i = 0; i < 256; ++i) {
        std::string entry = std::to_string(i);
        entry.resize(255, 'q');
        list += (i > 0 ? "," : "") + entry;
    }
    const std::string key = new_key();
    const std::string name(48, 'n');
    const AuthorizedKeys parsed = parse_authorized_keys(key + " " + name + " send=" + list);
    ASSERT_EQ(parsed.keys.size(), 1u);
    EXPECT_EQ(parsed.keys[0].name, name);
    EXPECT_EQ(parsed.keys[0].permissions.send->size(), 256u);

    const auto problem = only_problem(key + " " + name + " send=" + list + ",one-more");
    EXPECT_EQ(problem.reason, "send= lists more than 256");
}

TEST(AuthorizedKeys, KeysPastTheBoundAreProblems) {
    std::string text;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < kMaxAuthorizedKeys + 2; ++i) {
        keys.push_back(new_key());
        text += keys.back() + " n" + std::to_string(i) + "\n";
    }
    const AuthorizedKeys parsed = parse_authorized_keys(text);
    EXPECT_EQ(parsed.keys.size(), kMaxAuthorizedKeys);
    ASSERT_EQ(parsed.problems.size(), 2u);
    EXPECT_EQ(parsed.problems[0].line, kMaxAuthorizedKeys + 1);
    EXPECT_EQ(parsed.problems[0].reason, "more than 4096 keys listed");
    EXPECT_EQ(parsed.problems[1].line, kMaxAuthorizedKeys + 2);
    EXPECT_EQ(parsed.find(raw(keys.back())), nullptr);
}

TEST(AuthorizedKeys, ProblemsPastTheirBoundAreCountedInOneMore) {
    std::string text = new_key() + " good\n";
    for (int i = 0; i < 150; ++i) text += "junk\n";
    const AuthorizedKeys parsed = parse_authorized_keys(text);
    EXPECT_EQ(parsed.keys.size(), 1u);
    ASSERT_EQ(parsed.problems.size(), kMaxAuthorizedKeysProblems + 1);
    EXPECT_EQ(parsed.problems[99].line, 101u);
    EXPECT_EQ(parsed.problems.back().line, 102u);
    EXPECT_EQ(parsed.problems.back().reason, "50 more lines skipped from this one on");
}

// --- Format ---------------------------------------------------------------------------------

TEST(AuthorizedKeys, AFormattedLineParsesBackToTheSameEntry) {
    std::vector<AuthorizedKey> entries;
    entries.push_back(entry_of(new_key(), "plain"));
    AuthorizedKey full = entry_of(new_key(), "full.node-1_x");
    full.permissions.send = std::vector<std::string>{"orders", "refunds"};
    full.permissions.consume = std::vector<std::string>{"*"};
    full.permissions.publish = std::vector<std::string>{};
    full.permissions.subscribe = std::vector<std::string>{"sensors.", "alerts"};
    entries.push_back(full);
    AuthorizedKey some = entry_of(new_key(), "some");
    some.permissions.subscribe = std::vector<std::string>{};
    entries.push_back(some);

    for (const AuthorizedKey& entry : entries) {
        const std::string line = format_authorized_key(entry);
        EXPECT_EQ(line.find('\n'), std::string::npos) << line;
        const AuthorizedKeys parsed = parse_authorized_keys(line);
        ASSERT_EQ(parsed.keys.size(), 1u) << line;
        EXPECT_TRUE(parsed.problems.empty()) << line;
        const AuthorizedKey& back = parsed.keys[0];
        EXPECT_EQ(back.key, entry.key) << line;
        EXPECT_EQ(back.name, entry.name) << line;
        EXPECT_EQ(back.permissions.send, entry.permissions.send) << line;
        EXPECT_EQ(back.permissions.consume, entry.permissions.consume) << line;
        EXPECT_EQ(back.permissions.publish, entry.permissions.publish) << line;
        EXPECT_EQ(back.permissions.subscribe, entry.permissions.subscribe) << line;
    }
    EXPECT_EQ(format_authorized_key(full), encode_key(full.key) +
                                               " full.node-1_x send=orders,refunds consume=* "
                                               "publish= subscribe=sensors.,alerts");
}

// --- Reading files --------------------------------------------------------------------------

TEST(AuthorizedKeys, ReadsAFile) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string key = new_key();
    write_file(path, "# keys\n" + key + " billing send=orders\njunk\n");
    const auto read = read_authorized_keys(path);
    ASSERT_TRUE(read) << read.status().to_string();
    ASSERT_EQ(read->keys.size(), 1u);
    EXPECT_EQ(read->keys[0].line, 2u);
    ASSERT_EQ(read->problems.size(), 1u);
    EXPECT_EQ(read->problems[0].line, 3u);
}

TEST(AuthorizedKeys, AMissingFileIsNotFound) {
    TempDir dir("authorized-keys");
    const auto read = read_authorized_keys(dir.file("absent"));
    ASSERT_FALSE(read);
    EXPECT_EQ(read.status().code(), ErrorCode::not_found);
}

TEST(AuthorizedKeys, AFileWritableByGroupOrOthersIsRefused) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    for (const mode_t mode : {0666, 0620, 0602}) {
        write_file(path, new_key() + " billing\n", mode);
        const auto read = read_authorized_keys(path);
        ASSERT_FALSE(read) << std::oct << mode;
        EXPECT_EQ(read.status().code(), ErrorCode::invalid_argument);
        EXPECT_NE(read.status().message().find(path), std::string::npos) << read.status().message();
        EXPECT_NE(read.status().message().find("chmod 600"), std::string::npos)
            << read.status().message();
    }
    // Readable by others is no risk: the file holds public keys only.
    write_file(path, new_key() + " billing\n", 0644);
    EXPECT_TRUE(read_authorized_keys(path));
}

TEST(AuthorizedKeys, AFileLargerThanTheBoundIsRefused) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    write_file(path, std::string(kMaxAuthorizedKeysFileBytes, '\n'));
    EXPECT_TRUE(read_authorized_keys(path));
    write_file(path, std::string(kMaxAuthorizedKeysFileBytes + 1, '\n'));
    const auto read = read_authorized_keys(path);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.status().code(), ErrorCode::invalid_argument);
    EXPECT_NE(read.status().message().find("larger than"), std::string::npos);
}

TEST(AuthorizedKeys, ADirectoryIsNoFileToRead) {
    TempDir dir("authorized-keys");
    ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
    const auto read = read_authorized_keys(dir.path());
    ASSERT_FALSE(read);
    EXPECT_EQ(read.status().code(), ErrorCode::invalid_argument);
}

// --- Edits ----------------------------------------------------------------------------------

TEST(AuthorizedKeys, AddCreatesTheFileWithMode0600) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const mode_t old_mask = ::umask(0);
    AuthorizedKey entry = entry_of(new_key(), "billing");
    entry.permissions.send = std::vector<std::string>{"orders"};
    const Status added = add_authorized_key(path, entry);
    ::umask(old_mask);
    ASSERT_TRUE(added.ok()) << added.to_string();
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_EQ(read_file(path), format_authorized_key(entry) + "\n");
    EXPECT_EQ(fs::directory_iterator(dir.path())->path().filename(), kAuthorizedKeysFileName)
        << "a temporary file was left behind";
}

TEST(AuthorizedKeys, AddDoesNotCreateTheDirectory) {
    TempDir dir("authorized-keys");
    const std::string missing = dir.file("missing");
    const Status added =
        add_authorized_key(missing + "/" + kAuthorizedKeysFileName, entry_of(new_key(), "x"));
    EXPECT_EQ(added.code(), ErrorCode::io_error) << added.to_string();
    EXPECT_FALSE(fs::exists(missing));
}

TEST(AuthorizedKeys, AddKeepsEveryOtherLineAsItWas) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    // A comment, odd spacing, a damaged line, and no end on the last line.
    const std::string before = "# the shop's keys\n\n" + new_key() + "\t  billing   send=orders\n" +
                               "junk that stays\n# last comment";
    write_file(path, before, 0644);
    const AuthorizedKey entry = entry_of(new_key(), "stock");
    ASSERT_TRUE(add_authorized_key(path, entry).ok());
    EXPECT_EQ(read_file(path), before + "\n" + format_authorized_key(entry) + "\n");
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_TRUE(read_authorized_keys(path)->find_name("stock"));
}

TEST(AuthorizedKeys, AddEndsItsLineLikeTheFilesOthers) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string before = "# windows\r\n" + new_key() + " billing\r\n";
    write_file(path, before);
    const AuthorizedKey entry = entry_of(new_key(), "stock");
    ASSERT_TRUE(add_authorized_key(path, entry).ok());
    EXPECT_EQ(read_file(path), before + format_authorized_key(entry) + "\r\n");
}

TEST(AuthorizedKeys, AddRefusesAKeyOrANameAlreadyListed) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string key = new_key();
    ASSERT_TRUE(add_authorized_key(path, entry_of(key, "billing")).ok());
    const std::string before = read_file(path);

    const Status same_key = add_authorized_key(path, entry_of(key, "other"));
    EXPECT_EQ(same_key.code(), ErrorCode::invalid_argument);
    EXPECT_NE(same_key.message().find("already listed on line 1"), std::string::npos)
        << same_key.message();
    const Status same_name = add_authorized_key(path, entry_of(new_key(), "billing"));
    EXPECT_EQ(same_name.code(), ErrorCode::invalid_argument);
    EXPECT_NE(same_name.message().find("billing"), std::string::npos) << same_name.message();
    EXPECT_EQ(read_file(path), before);
}

TEST(AuthorizedKeys, AddRefusesAnEntryThatWouldNotReadBack) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    AuthorizedKey bad_list = entry_of(new_key(), "billing");
    bad_list.permissions.send = std::vector<std::string>{"a", ""};
    std::vector<AuthorizedKey> bad = {entry_of(new_key(), ""), entry_of(new_key(), "a b"),
                                      entry_of(new_key(), "a\n# b"), bad_list};
    for (const AuthorizedKey& entry : bad) {
        const Status added = add_authorized_key(path, entry);
        EXPECT_EQ(added.code(), ErrorCode::invalid_argument) << entry.name;
    }
    EXPECT_FALSE(fs::exists(path));
}

TEST(AuthorizedKeys, EditsRefuseAFileWritableByOthers) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string key = new_key();
    write_file(path, key + " billing\n", 0666);
    EXPECT_EQ(add_authorized_key(path, entry_of(new_key(), "x")).code(),
              ErrorCode::invalid_argument);
    EXPECT_EQ(remove_authorized_key(path, "billing").code(), ErrorCode::invalid_argument);
    EXPECT_EQ(read_file(path), key + " billing\n");
}

TEST(AuthorizedKeys, RemoveByNameKeepsCommentsAndOtherLines) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string keep_a = "# the shop\n" + new_key() + " billing  send=orders\n";
    const std::string keep_b = "\n# stock below\r\n" + new_key() + " stock\n";
    write_file(path, keep_a + new_key() + " audit consume=*\n" + keep_b);
    ASSERT_TRUE(remove_authorized_key(path, "audit").ok());
    EXPECT_EQ(read_file(path), keep_a + keep_b);
    EXPECT_EQ(mode_of(path), 0600u);
}

TEST(AuthorizedKeys, RemoveByKeyDropsEveryLineOfThatKey) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string key = new_key();
    const std::string other = new_key() + " other\n";
    // The second line is skipped while the first stands; left alone, it would take effect.
    write_file(path, key + " billing send=orders\n" + other + key + " billing2\n");
    ASSERT_TRUE(remove_authorized_key(path, key).ok());
    EXPECT_EQ(read_file(path), other);
}

TEST(AuthorizedKeys, RemoveByNameAlsoDropsLaterLinesOfItsKey) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string key = new_key();
    const std::string other = "# kept\n" + new_key() + " other\n";
    write_file(path, key + " billing\n" + other + key + " alias\n");
    ASSERT_TRUE(remove_authorized_key(path, "billing").ok());
    EXPECT_EQ(read_file(path), other);
}

TEST(AuthorizedKeys, RemoveOfWhatNoLineListsIsNotFound) {
    TempDir dir("authorized-keys");
    const std::string path = dir.file(kAuthorizedKeysFileName);
    const std::string text = "# billing\n" + new_key() + " billing\n";
    write_file(path, text);
    EXPECT_EQ(remove_authorized_key(path, "stock").code(), ErrorCode::not_found);
    EXPECT_EQ(remove_authorized_key(path, new_key()).code(), ErrorCode::not_found);
    EXPECT_EQ(remove_authorized_key(path, "").code(), ErrorCode::not_found);
    EXPECT_EQ(read_file(path), text);
    EXPECT_EQ(remove_authorized_key(dir.file("absent"), "billing").code(), ErrorCode::not_found);
}

TEST(AuthorizedKeys, EditsReplaceTheFileALinkPointsToAndKeepTheLink) {
    TempDir dir("authorized-keys");
    const std::string target = dir.file("real_keys");
    const std::string link = dir.file(kAuthorizedKeysFileName);
    write_file(target, "# real\n");
    fs::create_symlink("real_keys", link);
    const AuthorizedKey entry = entry_of(new_key(), "billing");
    ASSERT_TRUE(add_authorized_key(link, entry).ok());
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_EQ(read_file(target), "# real\n" + format_authorized_key(entry) + "\n");
    ASSERT_TRUE(remove_authorized_key(link, "billing").ok());
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_EQ(read_file(target), "# real\n");
}

}  // namespace
}  // namespace peermq::detail
