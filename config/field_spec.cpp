#include "config/field_spec.h"

namespace aetl {

std::string_view field_type_name(FieldType type) {
  switch (type) {
    case FieldType::string: return "string";
    case FieldType::template_text: return "template";
    case FieldType::expression: return "expression";
    case FieldType::jq_program: return "jq program";
    case FieldType::integer: return "whole number";
    case FieldType::size: return "size";
    case FieldType::duration: return "duration";
    case FieldType::duration_range: return "duration range";
    case FieldType::rate: return "rate";
    case FieldType::boolean: return "boolean";
    case FieldType::choice: return "choice";
    case FieldType::list: return "list";
    case FieldType::map: return "map";
    case FieldType::columns: return "columns";
    case FieldType::section: return "section";
  }
  return "?";
}

}  // namespace aetl
