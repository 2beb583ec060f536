/** Small timing helpers. */

export interface Debounced {
  (): void;
  cancel(): void;
}

/** Call `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn: () => void, ms: number): Debounced {
  let timer: number | undefined;
  const debounced = (): void => {
    window.clearTimeout(timer);
    timer = window.setTimeout(fn, ms);
  };
  debounced.cancel = (): void => window.clearTimeout(timer);
  return debounced;
}
