// Composes the supergraph from a rover-style `supergraph.yaml` with
// @theguild/federation-composition (the composition Hive Router is verified against).
//
//   node scripts/compose/compose.mjs [--config supergraph.yaml] [--output supergraph.graphql] [--check]
//
// --check compares instead of writing and exits 1 when the output file would change.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { composeServices } from "@theguild/federation-composition";
import { parse } from "graphql";
import YAML from "yaml";

function argument(name, fallback) {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : process.argv[index + 1];
}

const configPath = resolve(argument("--config", "supergraph.yaml"));
const outputPath = resolve(argument("--output", "supergraph.graphql"));
const check = process.argv.includes("--check");

const config = YAML.parse(readFileSync(configPath, "utf8"));
if (!config || typeof config.subgraphs !== "object") {
  console.error(`${configPath}: expected a 'subgraphs' map`);
  process.exit(2);
}

const services = Object.entries(config.subgraphs).map(([name, subgraph]) => {
  const file = subgraph?.schema?.file;
  if (!file || !subgraph.routing_url) {
    console.error(`${configPath}: subgraph '${name}' needs routing_url and schema.file`);
    process.exit(2);
  }
  const path = resolve(dirname(configPath), file);
  return { name, url: subgraph.routing_url, typeDefs: parse(readFileSync(path, "utf8")) };
});

const result = composeServices(services);
if (result.errors && result.errors.length > 0) {
  for (const error of result.errors) console.error(`composition error: ${error.message}`);
  process.exit(1);
}

const supergraph = result.supergraphSdl.endsWith("\n") ? result.supergraphSdl : `${result.supergraphSdl}\n`;
if (check) {
  const current = existsSync(outputPath) ? readFileSync(outputPath, "utf8") : "";
  if (current !== supergraph) {
    console.error(`${outputPath} is out of date: run scripts/compose.sh`);
    process.exit(1);
  }
  console.log(`${outputPath} is up to date`);
} else {
  writeFileSync(outputPath, supergraph);
  console.log(`wrote ${outputPath}`);
}
