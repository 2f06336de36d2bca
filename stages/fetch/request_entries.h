#pragma once
#include <memory>

#include "run/record_step.h"
#include "stages/fetch/fetch_request.h"

namespace aetl {

/// afetch --push: a record step that turns each afetch input line (a URL or a
/// JSON request object, see parse_request_line) into the JSON request object a
/// worker (afetch --from-stream) fetches: {"url", "method", "headers", "body",
/// "id"}, with the command's -X, -H and --data already applied, so workers need
/// none of them. Blank and comment lines are dropped; a malformed line fails
/// with parse_request_line's message.
std::shared_ptr<RecordStep> request_entry_step(RequestDefaults defaults);

/// The JSON request object of a parsed request (what request_entry_step makes).
std::string request_object_json(const ParsedRequest& parsed);

}  // namespace aetl
