import type { VelocityQuery } from "../domain/velocity.ts";

/** Velocity measures answered from stored decisions. */
export interface VelocityStore {
  /**
   * How many (or the sum of a number) of the tenant's decisions in `[since, until)` share the group value
   * and pass the filters. Rows whose summed number is missing count as nothing in a sum.
   */
  measure(query: VelocityQuery): Promise<number>;
}
