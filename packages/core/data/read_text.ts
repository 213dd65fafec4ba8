/** Reading a user-named text file, with a one-line UserError when it is not there. */
import { UserError } from "../errors.ts";

/** The text of `path`; a missing file throws `<path>: <what> not found; <fix>`. */
export async function readUserText(path: string, what: string, fix: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`${path}: ${what} not found; ${fix}`);
    }
    throw e;
  }
}
