/** Bad usage or bad input: the command line prints the message on one line and exits with code 2. */
export class InputError extends Error {
  override name = 'InputError';
}
