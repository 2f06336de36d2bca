#include "run/checkpoint_keeper.h"

#include <new>

#include "engine/setup_error.h"

namespace aetl {

std::unique_ptr<StateStore> open_state_store(const std::string& path) {
  try {
    return std::make_unique<StateStore>(path);
  } catch (const std::bad_alloc&) {
    throw;  // out of memory, not a broken store
  } catch (const std::exception& e) {
    throw SetupError(e.what());
  }
}

std::optional<Checkpoint> load_checkpoint(StateStore& store, PipelineSink* main_sink, const std::string& name,
                                          bool from_start) {
  std::optional<std::string> saved;
  if (main_sink && main_sink->exactly_once()) saved = main_sink->stored_checkpoint();
  else if (!from_start) saved = store.load(name);
  if (from_start) {
    store.clear(name);
    saved.reset();
  }
  if (!saved) return std::nullopt;
  try {
    return Checkpoint::from_json(*saved);
  } catch (const std::bad_alloc&) {
    throw;  // out of memory: the checkpoint is fine, --from-start would throw it away
  } catch (const std::exception& e) {
    throw SetupError(store.path() + ": " + e.what() + " (run with --from-start to begin again)");
  }
}

}  // namespace aetl
