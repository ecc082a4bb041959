import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { type AuditLog, type ChainCheckpoint, checkpointJson, writeFileAtomic } from "../index.ts";

/** `checkpoint-<seq, 12 digits>.json`: names sort in the log's order. */
const FILE_NAME = /^checkpoint-(\d{12})\.json$/;

export function checkpointFileName(seq: number): string {
  return `checkpoint-${String(seq).padStart(12, "0")}.json`;
}

/**
 * Anchors the log outside its store (`lumyn serve --checkpoint-dir`): every interval, signs the head when it
 * moved and writes each checkpoint made since the last one written to the folder, one file each, the form
 * `lumyn verify --checkpoint DIR` reads. The folder is meant to be somewhere the store's administrators cannot
 * write (a mounted bucket with object lock, a witness's inbox): a checkpoint there that the log no longer
 * holds shows a truncation or a rewrite, even when every checkpoint row was deleted.
 *
 * An empty folder gets the latest checkpoint, not the whole history: checkpoints signed before anything was
 * anchored prove only what the store says, which an exported copy does not change.
 */
export class CheckpointExport {
  private readonly log: AuditLog;
  private readonly dir: string;
  private readonly logger: FastifyBaseLogger;
  private written = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  private constructor(log: AuditLog, dir: string, logger: FastifyBaseLogger) {
    this.log = log;
    this.dir = dir;
    this.logger = logger;
  }

  /** Writes what is due now (failing when the folder cannot be written), then again every `intervalMs`. */
  static async start(
    log: AuditLog,
    dir: string,
    intervalMs: number,
    logger: FastifyBaseLogger,
  ): Promise<CheckpointExport> {
    mkdirSync(dir, { recursive: true });
    const anchor = new CheckpointExport(log, dir, logger);
    const seqs = readdirSync(dir).flatMap((name) => {
      const match = FILE_NAME.exec(name);
      return match ? [Number(match[1])] : [];
    });
    anchor.written = Math.max(0, ...seqs);
    if (seqs.length === 0) {
      await log.sign();
      const latest = (await log.checkpoints()).at(-1);
      if (latest) anchor.write([latest]);
    }
    await anchor.pass();
    anchor.timer = setInterval(() => {
      anchor.running ??= anchor
        .pass()
        .catch((error: unknown) =>
          logger.warn(
            { error: error instanceof Error ? error.message : String(error), dir },
            "writing checkpoints to the checkpoint folder failed; retrying",
          ),
        )
        .finally(() => {
          anchor.running = undefined;
        });
    }, intervalMs);
    anchor.timer.unref();
    return anchor;
  }

  /** Stops the timer, then signs and writes the head once more, so the last entries are anchored too. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.pass();
  }

  private async pass(): Promise<void> {
    await this.log.sign();
    this.write(await this.log.checkpoints(this.written));
  }

  private write(checkpoints: readonly ChainCheckpoint[]): void {
    for (const checkpoint of checkpoints) {
      const text = `${JSON.stringify(checkpointJson(checkpoint), null, 2)}\n`;
      writeFileAtomic(join(this.dir, checkpointFileName(checkpoint.seq)), text);
      this.written = Math.max(this.written, checkpoint.seq);
      this.logger.debug({ seq: checkpoint.seq, dir: this.dir }, "checkpoint anchored");
    }
  }
}
