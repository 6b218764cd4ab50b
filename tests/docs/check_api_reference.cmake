# Builds the `docs` target and checks that the reference documents the main classes with the
# comments from their headers (the Doxygen input filter turns `//` into `///`).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target docs
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the docs target failed (${rc}):\n${out}\n${err}")
endif()
foreach(check
    "classpeermq_1_1Node.html|Binds the sockets, opens the journal"
    "classpeermq_1_1Queue.html|Hands the message to the actor"
    "classpeermq_1_1DeadLetterJournal.html|Opens"
    "structpeermq_1_1QueueOptions.html|before dead-lettering")
  string(REPLACE "|" ";" parts "${check}")
  list(GET parts 0 page)
  list(GET parts 1 text)
  if(NOT EXISTS ${HTML_DIR}/${page})
    message(FATAL_ERROR "the API reference has no page ${page}")
  endif()
  file(READ ${HTML_DIR}/${page} html)
  string(FIND "${html}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${page} does not carry the header comment \"${text}\"")
  endif()
endforeach()
message(STATUS "API reference OK: ${HTML_DIR}/index.html")
