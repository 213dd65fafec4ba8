/** An error caused by the user's input (a file, a flag): the CLI prints its one-line message. */
export class UserError extends Error {
  override name = "UserError";
}
