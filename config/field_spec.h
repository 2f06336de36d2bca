#pragma once
#include <span>
#include <string_view>

namespace aetl {

/// What a field holds; `aetl explain` prints the name, the reader checks that a
/// field is read as what it was declared.
enum class FieldType {
  string,          ///< text (after `${VAR}` expansion)
  template_text,   ///< text with `{field}` placeholders filled from the record
  expression,      ///< the expression language (aetl-pipeline(5) EXPRESSIONS)
  jq_program,      ///< a jq program
  integer,         ///< a whole number
  size,            ///< bytes: 512KiB, 16MiB, 1G
  duration,        ///< 250ms, 1.5s, 2m
  duration_range,  ///< 100ms..30s (or one duration)
  rate,            ///< 50/s, 600/m
  boolean,         ///< true or false
  choice,          ///< one of a few words, listed in the description
  list,            ///< a string or a list of strings
  map,             ///< a mapping of name: string
  columns,         ///< a list of names or a mapping of name: SQL type
  section,         ///< a part of a pipeline (source, stages, sink): see its kinds
};

/// The word `aetl explain` prints for a type ("whole number", "duration", ...).
std::string_view field_type_name(FieldType type);

/// One declared field of a kind (or of the pipeline file's top level). Parsers may
/// read only declared fields; docs, validation and did-you-mean read the declaration.
struct FieldSpec {
  /// The key; nested keys as a dotted path (`batch.size`). Two special names:
  /// "" is the kind's value written in short form (`filter: 'a > 1'`), "*" any key
  /// of the kind's mapping (select's output fields).
  std::string_view name;
  FieldType type;
  std::string_view default_text;  ///< "" when there is none; "required" when the key must be given
  std::string_view description;   ///< one line
  std::string_view example;       ///< a YAML value that the kind's parser accepts
};

using FieldList = std::span<const FieldSpec>;

}  // namespace aetl
