#!/usr/bin/env node
// The `lumyn` executable. V8's compile cache is enabled before anything else is loaded, so that every command
// after the first starts from cached bytecode.
import { enableCompileCache } from "node:module";

enableCompileCache();
// A reader that stops early (`lumyn init | head`) closes the pipe: that ends the output, it is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
    throw error;
  });
}
const { main } = await import("./program.ts");
process.exitCode = await main(process.argv);
