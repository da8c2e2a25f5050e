import { parseEventsBody, parseReportBody } from './http.js';

describe('event and report bodies', () => {
  it('takes a JSON array (what the PE posts), one object, or NDJSON', () => {
    expect(parseEventsBody('[{"type":"ready","mode":"deploy"},{"type":"step","step":"apply"}]').map((e) => e.type)).toEqual(['ready', 'step']);
    expect(parseEventsBody('{"type":"failed","message":"m"}')).toEqual([{ type: 'failed', message: 'm' }]);
    expect(parseEventsBody('{"type":"a"}\n\n{"type":"b"}\n').map((e) => e.type)).toEqual(['a', 'b']);
    expect(parseEventsBody('  ')).toEqual([]);
  });

  it('refuses what is not a list of events', () => {
    expect(() => parseEventsBody('{"type":"a"}\nnope')).toThrow('line 2 of the events is not JSON');
    expect(() => parseEventsBody('[1]')).toThrow('event 1 is not an object with a string "type"');
    expect(() => parseEventsBody('[{"type":"a"},{"type":5}]')).toThrow('event 2');
  });

  it('reads a first-boot report and refuses one without a state', () => {
    expect(parseReportBody('{"hostname":"pc1","machineId":"m","state":"degraded","failedUnits":"a.service ","extra":1}')).toEqual({ hostname: 'pc1', machineId: 'm', state: 'degraded', failedUnits: 'a.service ' });
    expect(() => parseReportBody('{"hostname":"pc1"}')).toThrow(/string "state"/);
    expect(() => parseReportBody('{"state":"running","hostname":7}')).toThrow(/"hostname" is not a string/);
    expect(() => parseReportBody('running')).toThrow(/not JSON/);
  });
});
