// Shared by the subcommands: node options from the command line, output helpers.
#pragma once
