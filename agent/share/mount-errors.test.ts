import { explainCifsMountError, isTransientCifsMountError } from './mount-errors.js';

describe('explainCifsMountError', () => {
  it('names a refused password, a missing share or folder, and an unreachable server', () => {
    expect(explainCifsMountError('mount error(13): Permission denied\nRefer to the mount.cifs(8) manual page')).toMatchObject({ code: 'REFUSED', reason: expect.stringMatching(/user name or password/) });
    expect(explainCifsMountError('mount error(2): No such file or directory')).toMatchObject({ code: 'NOT_FOUND', reason: expect.stringMatching(/no such share or folder/) });
    expect(explainCifsMountError('mount error(113): could not connect to 10.0.2.99Unable to find suitable address.')).toMatchObject({ code: 'NOT_FOUND', reason: expect.stringMatching(/cannot be reached/) });
  });
  it('leaves text without a known error number alone', () => {
    expect(explainCifsMountError('mount error(999): something new')).toBeUndefined();
    expect(explainCifsMountError('mount.cifs: bad UNC')).toBeUndefined();
  });
});

describe('isTransientCifsMountError', () => {
  it('retries a server that was not ready, never refused credentials or a missing share', () => {
    expect(isTransientCifsMountError('mount error(121): Remote I/O error')).toBe(true);
    expect(isTransientCifsMountError('mount error(113): could not connect to 10.0.2.99')).toBe(true);
    expect(isTransientCifsMountError('mount error(13): Permission denied')).toBe(false);
    expect(isTransientCifsMountError('mount error(2): No such file or directory')).toBe(false);
    expect(isTransientCifsMountError('mount: unknown filesystem type')).toBe(false);
  });
});
