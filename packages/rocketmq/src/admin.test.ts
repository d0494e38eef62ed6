import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, parseGroupNames, parseMasterAddresses, parseQueues } from './admin.ts';

describe('remoting frames', () => {
  it('round-trips a header and body, and waits for a complete frame', () => {
    const frame = encodeFrame({ code: 17, flag: 0, opaque: 3, extFields: { topic: 't' } }, Buffer.from('body'));
    expect(decodeFrame(frame.subarray(0, 10))).toBeUndefined();
    const decoded = decodeFrame(Buffer.concat([frame, Buffer.from([1, 2])]));
    expect(decoded?.header).toMatchObject({ code: 17, opaque: 3, extFields: { topic: 't' } });
    expect(decoded?.body.toString()).toBe('body');
    expect([...(decoded?.rest ?? [])]).toEqual([1, 2]);
  });
});

describe('parseMasterAddresses', () => {
  it('reads fastjson cluster info with unquoted integer keys', () => {
    const info =
      '{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"},' +
      '"broker-b":{"brokerAddrs":{"0":"10.0.0.2:10911"},"brokerName":"broker-b"}},"clusterAddrTable":{"DefaultCluster":["broker-a","broker-b"]}}';
    expect(parseMasterAddresses(info)).toEqual(['127.0.0.1:10911', '10.0.0.2:10911']);
  });

  it('skips brokers without a master', () => {
    expect(parseMasterAddresses('{"brokerAddrTable":{"b":{"brokerAddrs":{1:"h:1"}}}}')).toEqual([]);
  });
});

describe('parseGroupNames (issue #22)', () => {
  it('reads group names from a SubscriptionGroupWrapper as the broker writes it (fastjson)', () => {
    const body = '{"dataVersion":{"counter":3,"timestamp":1},"subscriptionGroupTable":{"billing":{"groupName":"billing","consumeEnable":true},"CID_ONSAPI_OWNER":{"groupName":"CID_ONSAPI_OWNER"}},"forbiddenTable":{}}';
    expect([...parseGroupNames(body)].sort()).toEqual(['CID_ONSAPI_OWNER', 'billing']);
    expect(parseGroupNames('{}').size).toBe(0);
  });
});

describe('parseQueues (issue #22)', () => {
  it('lists each readable queue with its master broker, from TopicRouteData as fastjson writes it (bare integer keys)', () => {
    const route =
      '{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"c","enableActingMaster":false},' +
      '{"brokerAddrs":{0:"10.0.0.3:10911"},"brokerName":"broker-b","cluster":"c"}],' +
      '"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":2,"topicSysFlag":0,"writeQueueNums":2},{"brokerName":"broker-b","perm":6,"readQueueNums":1,"topicSysFlag":0,"writeQueueNums":1}],' +
      '"topicQueueMappingByBroker":{}}';
    expect(parseQueues(route)).toEqual([
      { broker: '10.0.0.1:10911', queueId: 0 },
      { broker: '10.0.0.1:10911', queueId: 1 },
      { broker: '10.0.0.3:10911', queueId: 0 },
    ]);
  });
});
