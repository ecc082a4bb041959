import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type DocumentCheck, type PolicyDocument, rejected } from "./policy-document.ts";
import type { CheckerThreadData, CheckReply, CheckRequest } from "./policy-document-thread.ts";

/**
 * The checking thread's heap, per MiB of the largest document (loading 1 MiB of YAML rules peaks at
 * ~170 MB): bounded, so that a document built to exhaust memory stops that thread (and is rejected), never
 * the server.
 */
const HEAP_MB_PER_DOCUMENT_MIB = 256;
const MIN_HEAP_MB = 512;

interface PendingCheck {
  readonly file: string;
  readonly resolve: (check: DocumentCheck) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Checks policy documents in a worker thread (policy-document-thread.ts), started at the first document and
 * started again after it stops. A document that stops the thread (out of memory) is rejected as invalid.
 */
export class PolicyDocumentChecker {
  private readonly data: CheckerThreadData;
  private readonly heapMb: number;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, PendingCheck>();
  private nextId = 0;
  private closed = false;

  /** `maxDocumentBytes`: the largest document it will be given, which sizes the thread's heap. */
  constructor(data: CheckerThreadData, maxDocumentBytes: number) {
    this.data = data;
    this.heapMb = Math.max(MIN_HEAP_MB, Math.ceil(maxDocumentBytes / 1_048_576) * HEAP_MB_PER_DOCUMENT_MIB);
  }

  check(document: PolicyDocument): Promise<DocumentCheck> {
    if (this.closed) return Promise.reject(new Error("the policy document checker is closed"));
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { file: document.file, resolve, reject });
      const request: CheckRequest = { id, document };
      worker.postMessage(request);
    });
  }

  private spawn(): Worker {
    const self = fileURLToPath(import.meta.url);
    const worker = new Worker(new URL(`./policy-document-thread${extname(self)}`, import.meta.url), {
      workerData: this.data,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
    });
    // Idle between documents: it must not keep the process alive.
    worker.unref();
    worker.on("message", (reply: CheckReply) => {
      const call = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      call?.resolve(reply.check);
    });
    worker.on("error", (error) => this.stopped(worker, error.message));
    worker.on("exit", (code) => this.stopped(worker, `exit code ${code}`));
    this.worker = worker;
    return worker;
  }

  private stopped(worker: Worker, why: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    for (const call of this.pending.values()) {
      call.resolve(
        rejected("invalid_policy", call, `the document could not be checked: checking it stopped (${why})`),
      );
    }
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    for (const call of this.pending.values()) call.reject(new Error("the policy document checker closed"));
    this.pending.clear();
    await worker?.terminate();
  }
}
