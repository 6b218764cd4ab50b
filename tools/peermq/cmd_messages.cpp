// Placeholder: replaced by the subcommand's implementation.
#include "commands.hpp"

namespace peermq::cli {

void add_message_commands(CLI::App& app, Runner& selected) {
    (void)app;
    (void)selected;
}

}  // namespace peermq::cli
