//! The REST twins of `/chat`'s events (contract §4, §8): messages sent, edited, read,
//! deleted and listed, conversations paged and members changed over REST answer and
//! broadcast like the events.

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A REST call as `user`: the status and the JSON body (`Null` when empty).
async fn rest(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    user: i64,
    body: Option<Value>,
) -> (u16, Value) {
    let bearer = token(user, &["user"]);
    server.call(method.as_str(), path, &bearer, body).await
}

/// [`rest`] that must answer `expected`: the body.
async fn expect_rest(
    server: &TestServer,
    expected: u16,
    method: reqwest::Method,
    path: &str,
    user: i64,
    body: Option<Value>,
) -> Value {
    let bearer = token(user, &["user"]);
    server
        .expect(expected, method.as_str(), path, &bearer, body)
        .await
}

/// The REST twins of the message events (seed 004: a backend posts without a socket):
/// same answers, same broadcasts (to every socket of the room: none is acting), same
/// database state.
#[sqlx::test]
async fn rest_twins_send_edit_read_delete_and_list_like_the_events(pool: PgPool) {
    use reqwest::Method;
    let (server, conv, alice, bob) = pair(pool.clone()).await;
    let path = format!("/api/conversations/{conv}/messages");

    let (status, sent) = rest(
        &server,
        Method::POST,
        &path,
        1,
        Some(json!({ "content": " hello ", "clientId": "k1" })),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["content"], "hello");
    assert_eq!(sent["sender_id"], 1);
    // No socket acted: the sender's own socket hears it too.
    assert_eq!(alice.recv("message:created").await, sent);
    assert_eq!(bob.recv("message:created").await, sent);
    // The same clientId answers the first message and announces nothing.
    let again = expect_rest(
        &server,
        201,
        Method::POST,
        &path,
        1,
        Some(json!({ "content": "hello", "clientId": "k1" })),
    )
    .await;
    assert_eq!(again["_id"], sent["_id"]);
    bob.expect_none("message:created", QUIET).await;
    assert_eq!(count_messages(&pool).await, 1);
    // A socket send and a REST send leave the same kind of row.
    bob.send_message(&conv, "from the socket").await;
    alice.recv("message:created").await;

    let page = expect_rest(
        &server,
        200,
        Method::GET,
        &format!("{path}?limit=10"),
        2,
        None,
    )
    .await;
    let listed = bob
        .ok(
            "message:list",
            json!({ "conversationId": conv, "limit": 10 }),
        )
        .await;
    assert_eq!(page, listed, "the same page as message:list");
    assert_eq!(page.as_array().unwrap().len(), 2);
    let (_, older) = rest(
        &server,
        Method::GET,
        &format!("{path}?before={}", page[0]["_id"].as_str().unwrap()),
        2,
        None,
    )
    .await;
    assert_eq!(older.as_array().unwrap().len(), 1);

    let id = sent["_id"].as_str().unwrap();
    let (status, body) = rest(
        &server,
        Method::PATCH,
        &format!("/api/messages/{id}"),
        2,
        Some(json!({ "content": "not mine" })),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let edited = expect_rest(
        &server,
        200,
        Method::PATCH,
        &format!("/api/messages/{id}"),
        1,
        Some(json!({ "content": "hello again" })),
    )
    .await;
    assert_eq!(edited["content"], "hello again");
    assert_eq!(bob.recv("message:updated").await, edited);

    let read = expect_rest(
        &server,
        200,
        Method::POST,
        &format!("/api/messages/{id}/read"),
        2,
        None,
    )
    .await;
    assert_eq!(read["messageId"], id);
    assert_eq!(read["readerId"], 2);
    assert!(read["readAt"].as_str().unwrap().ends_with('Z'));
    let heard = alice.recv("message:read").await;
    assert_eq!(
        (heard["readerId"].clone(), heard["readAt"].clone()),
        (json!(2), read["readAt"].clone())
    );

    let (status, _) = rest(
        &server,
        Method::DELETE,
        &format!("/api/messages/{id}"),
        2,
        None,
    )
    .await;
    assert_eq!(status, 403, "only the sender or the owner");
    let (status, body) = rest(
        &server,
        Method::DELETE,
        &format!("/api/messages/{id}"),
        1,
        None,
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(
        bob.recv("message:deleted").await,
        json!({ "messageId": id, "conversationId": conv })
    );
    let deleted: bool =
        sqlx::query_scalar("select deleted_at is not null from messages where id = $1::uuid")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(deleted);

    // Refusals: the event's codes, rights before the body.
    let stranger = 9;
    let (status, _) = rest(
        &server,
        Method::POST,
        &path,
        stranger,
        Some(json!({ "content": "" })),
    )
    .await;
    assert_eq!(status, 403, "a non-member learns nothing from validation");
    let body = expect_rest(
        &server,
        400,
        Method::POST,
        &path,
        1,
        Some(json!({ "content": "" })),
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("content"),
        "{body}"
    );
    for (status, method, path, user) in [
        (400, Method::GET, format!("{path}?limit=0"), 1),
        (
            404,
            Method::GET,
            format!("/api/conversations/{}/messages", Uuid::new_v4()),
            1,
        ),
        (400, Method::POST, "/api/messages/nope/read".to_owned(), 1),
    ] {
        expect_rest(&server, status, method, &path, user, None).await;
    }
}

/// `GET /api/conversations`: latest activity first, cursor paging, unread counts;
/// `GET /api/conversations/:id` for members; members added and removed over REST.
#[sqlx::test]
async fn rest_conversations_page_by_activity_and_members_change_like_the_events(pool: PgPool) {
    use reqwest::Method;
    let server = TestServer::start(pool).await;
    let first = create_conversation(&server, 1, "group", &[2]).await;
    let second = create_conversation(&server, 1, "group", &[3]).await;
    let third = create_conversation(&server, 1, "private", &[4]).await;
    // A message makes the first conversation the most recent one.
    let bob = joined(&server, 2, &first).await;
    bob.send_message(&first, "bump").await;
    let page = expect_rest(
        &server,
        200,
        Method::GET,
        "/api/conversations?limit=2",
        1,
        None,
    )
    .await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), third.as_str()]);
    assert_eq!(page["items"][0]["unread_count"], 1);
    assert_eq!(page["items"][1]["unread_count"], 0);
    assert_eq!(page["items"][0]["participants"], json!([1, 2]));
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest_page) = rest(
        &server,
        Method::GET,
        &format!("/api/conversations?limit=2&cursor={next}"),
        1,
        None,
    )
    .await;
    assert_eq!(rest_page["items"][0]["_id"], second.as_str());
    assert_eq!(rest_page["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest_page["next_cursor"], Value::Null);
    for bad in ["cursor=forged", "cursor=12.34", "limit=0", "limit=101"] {
        let (status, body) = rest(
            &server,
            Method::GET,
            &format!("/api/conversations?{bad}"),
            1,
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Bob sees only his own.
    let (_, his) = rest(&server, Method::GET, "/api/conversations", 2, None).await;
    assert_eq!(his["items"].as_array().unwrap().len(), 1);

    let got = expect_rest(
        &server,
        200,
        Method::GET,
        &format!("/api/conversations/{first}"),
        2,
        None,
    )
    .await;
    assert_eq!(got["participants"], json!([1, 2]));
    expect_rest(
        &server,
        403,
        Method::GET,
        &format!("/api/conversations/{first}"),
        3,
        None,
    )
    .await;
    expect_rest(
        &server,
        404,
        Method::GET,
        &format!("/api/conversations/{}", Uuid::new_v4()),
        3,
        None,
    )
    .await;

    let members = format!("/api/conversations/{first}/members");
    let carol = server.client("/chat", 5).await;
    let (status, _) = rest(
        &server,
        Method::POST,
        &members,
        2,
        Some(json!({ "userId": 5 })),
    )
    .await;
    assert_eq!(status, 403, "only the owner adds");
    let added = expect_rest(
        &server,
        201,
        Method::POST,
        &members,
        1,
        Some(json!({ "userId": 5 })),
    )
    .await;
    assert_eq!(added, member(&first, 5));
    let expected = member(&first, 5);
    assert_eq!(bob.recv("members:added").await, expected);
    assert_eq!(carol.recv("members:added").await, expected);
    let (status, _) = rest(
        &server,
        Method::POST,
        &members,
        1,
        Some(json!({ "userId": 5 })),
    )
    .await;
    assert_eq!(status, 200, "already a member");
    bob.expect_none("members:added", QUIET).await;
    let (status, _) = rest(
        &server,
        Method::POST,
        &format!("/api/conversations/{third}/members"),
        1,
        Some(json!({ "userId": 6 })),
    )
    .await;
    assert_eq!(status, 400, "a private conversation takes no members");

    expect_rest(
        &server,
        204,
        Method::DELETE,
        &format!("{members}?userId=5"),
        1,
        None,
    )
    .await;
    assert_eq!(bob.recv("members:removed").await, expected);
    let (status, body) = rest(
        &server,
        Method::DELETE,
        &format!("{members}?userId=5"),
        1,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = rest(&server, Method::DELETE, &members, 1, None).await;
    assert_eq!(status, 400, "userId is required");
}
