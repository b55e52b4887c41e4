// Checks a function tool as the user types it: JSON first (with where it breaks), then the shape the API takes
// (a name of letters, digits, _ and -, at most 64; parameters a JSON Schema object). The server checks again
// on save; this only says sooner what it would refuse.

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const KEYS = new Set(["name", "description", "parameters", "strict"]);
const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);

function parse(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `Not valid JSON: ${err.message}` };
  }
}

// Problems in a JSON Schema (the parts a function's parameters use), each with its path.
function schemaProblems(schema, path, out) {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    out.push(`${path} must be an object (a JSON Schema)`);
    return out;
  }
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  for (const type of types) if (!TYPES.has(type)) out.push(`${path}.type: "${type}" is not a JSON Schema type`);
  if (schema.properties !== undefined) {
    if (typeof schema.properties !== "object" || schema.properties === null || Array.isArray(schema.properties)) {
      out.push(`${path}.properties must be an object`);
    } else {
      for (const [key, sub] of Object.entries(schema.properties)) schemaProblems(sub, `${path}.properties.${key}`, out);
    }
  }
  if (schema.required !== undefined) {
    if (!Array.isArray(schema.required) || schema.required.some((r) => typeof r !== "string")) {
      out.push(`${path}.required must be an array of property names`);
    } else {
      for (const name of schema.required) {
        if (!schema.properties || !(name in schema.properties)) out.push(`${path}.required: "${name}" is not a property`);
      }
    }
  }
  if (schema.items !== undefined) schemaProblems(schema.items, `${path}.items`, out);
  if (schema.enum !== undefined && (!Array.isArray(schema.enum) || !schema.enum.length)) {
    out.push(`${path}.enum must be a non-empty array`);
  }
  return out;
}

// {value, problems}: the function definition and what is wrong with it (empty when it can be saved).
export function checkFunction(text) {
  const { value, error } = parse(text);
  if (error) return { problems: [error] };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { problems: ["A function is a JSON object: {\"name\": ..., \"parameters\": {...}}"] };
  }
  const problems = [];
  if (typeof value.name !== "string" || !NAME.test(value.name)) {
    problems.push("name: 1-64 letters, digits, _ or -");
  }
  if (value.description !== undefined && typeof value.description !== "string") problems.push("description must be a string");
  if (value.strict !== undefined && typeof value.strict !== "boolean") problems.push("strict must be true or false");
  for (const key of Object.keys(value)) if (!KEYS.has(key)) problems.push(`unknown field "${key}"`);
  if (value.parameters !== undefined) {
    schemaProblems(value.parameters, "parameters", problems);
    if (value.parameters && value.parameters.type !== undefined && value.parameters.type !== "object") {
      problems.push('parameters.type must be "object"');
    }
  }
  return { value, problems };
}

// A response_format JSON schema: {name, schema, strict?}, with a JSON Schema under `schema`.
export function checkResponseSchema(text) {
  const { value, error } = parse(text);
  if (error) return { problems: [error] };
  const problems = [];
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { problems: ["must be a JSON object"] };
  if (typeof value.name !== "string" || !NAME.test(value.name)) problems.push("name: 1-64 letters, digits, _ or -");
  if (value.schema !== undefined) schemaProblems(value.schema, "schema", problems);
  return { value, problems };
}
